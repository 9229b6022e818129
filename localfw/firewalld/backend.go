package firewalld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/plan"
)

// ErrLimit is returned for a rule with a connection limit: firewalld's
// rich-rule limit is a rate of new connections shared by every source,
// not a cap on the connections of each source.
var ErrLimit = errors.New("firewalld cannot enforce connections_per_source")

// Backend reads and writes the mailfw policies of one firewalld daemon.
type Backend struct {
	run  *execx.Runner
	log  *slog.Logger
	zone string

	mu    sync.Mutex
	notes []string
	// seen holds the policy names the last Read found in the runtime and
	// permanent configurations, so that an Apply right after it does not
	// ask again; nil before any Read.
	seen *[2][]string
	// version is firewall-cmd's version, read once.
	version string
}

var _ plan.Backend = (*Backend)(nil)

// Option configures a Backend.
type Option func(*Backend)

// WithRunner runs firewall-cmd through r (tests pass one with a namespace
// prefix).
func WithRunner(r *execx.Runner) Option { return func(b *Backend) { b.run = r } }

// WithLogger logs to l.
func WithLogger(l *slog.Logger) Option { return func(b *Backend) { b.log = l } }

// WithZone names the zone whose interfaces carry the mail traffic; its
// services and ports count as granting it. The default is firewalld's
// default zone. Rules of other interface-bound zones count as conditional.
func WithZone(zone string) Option { return func(b *Backend) { b.zone = zone } }

// New returns a firewalld backend.
func New(opts ...Option) *Backend {
	b := &Backend{}
	for _, o := range opts {
		o(b)
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("backend", "firewalld")
	if b.run == nil {
		b.run = execx.New(b.log)
	}
	return b
}

// Capabilities: deny rules yes, IPv6 yes; connection limits and
// descriptions no (rich rules have no comment field, so every description
// is stored as "").
func (b *Backend) Capabilities() plan.Capabilities {
	return plan.Capabilities{
		Deny: true, IPv6: true,
		Description: func(string) (string, error) { return "", nil },
	}
}

// Notes returns what the last Apply did besides the changes themselves,
// for example the runtime-only items it carried across a reload.
func (b *Backend) Notes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.notes)
}

// Probe reports whether firewalld is in charge: its daemon answers
// firewall-cmd --state with "running".
func Probe(ctx context.Context, run *execx.Runner) (active bool, detail string, err error) {
	if !run.Has("firewall-cmd") {
		return false, "firewall-cmd not installed", nil
	}
	out, err := run.Run(ctx, nil, "firewall-cmd", "--state")
	state := strings.TrimSpace(string(out))
	var ee *execx.Error
	switch {
	case err == nil && state == "running":
		return true, "firewalld running", nil
	case err == nil:
		return false, "firewalld state " + state, nil
	case errors.As(err, &ee) && ee.ExitCode > 0:
		if state == "" {
			state = strings.TrimSpace(ee.Stderr)
		}
		return false, "firewalld not answering: " + state, nil
	}
	return false, "", fmt.Errorf("probing firewalld: %w", err)
}

// fc runs firewall-cmd.
func (b *Backend) fc(ctx context.Context, args ...string) (string, error) {
	out, err := b.run.Run(ctx, nil, "firewall-cmd", args...)
	return string(out), err
}

// maxParallel bounds the firewall-cmd processes one Backend runs at once.
const maxParallel = 6

// parallel runs the calls at once and returns their outputs and errors in
// order, with all errors joined.
func (b *Backend) parallel(ctx context.Context, calls [][]string) ([]string, []error, error) {
	outs := make([]string, len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallel)
	for i, c := range calls {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			outs[i], errs[i] = b.fc(ctx, c...)
		})
	}
	wg.Wait()
	return outs, errs, errors.Join(errs...)
}

// readViews reads the zones and policies of both configurations.
func (b *Backend) readViews(ctx context.Context) (rt, perm view, extra []string, err error) {
	outs, _, err := b.parallel(ctx, [][]string{
		{"--list-all-zones"}, {"--list-all-policies"},
		{"--permanent", "--list-all-zones"}, {"--permanent", "--list-all-policies"},
		{"--get-default-zone"},
	})
	if err != nil {
		return view{}, view{}, nil, fmt.Errorf("reading firewalld: %w", err)
	}
	var vs [4]map[string]*block
	for i := range vs {
		bs, err := parseBlocks(outs[i])
		if err != nil {
			return view{}, view{}, nil, fmt.Errorf("parsing firewall-cmd output: %w", err)
		}
		vs[i] = byName(bs)
	}
	rt = view{Zones: vs[0], Policies: vs[1]}
	perm = view{Zones: vs[2], Policies: vs[3]}
	return rt, perm, []string{strings.TrimSpace(outs[4])}, nil
}

// readServices fetches the ports of every service that the zones in use
// and the host policies name, in either configuration.
func (b *Backend) readServices(ctx context.Context, rd *reading) (map[string][]portSpec, error) {
	names := map[string]bool{}
	for _, v := range []view{rd.runtime, rd.permanent} {
		for _, it := range v.items() {
			if it.Kind == "zone" && !rd.zoneInUse(it.Holder) {
				continue
			}
			switch it.Key {
			case "services":
				names[it.Value] = true
			case "rich rules":
				if rr, err := parseRichRule(it.Value); err == nil && rr.Service != "" {
					names[rr.Service] = true
				}
			}
		}
	}
	var list []string
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	calls := make([][]string, len(list))
	for i, n := range list {
		calls[i] = []string{"--info-service=" + n}
	}
	outs, errs, _ := b.parallel(ctx, calls)
	svc := map[string][]portSpec{}
	for i, out := range outs {
		if errs[i] != nil {
			// A service named only in the permanent configuration is
			// unknown to the runtime until a reload; it grants nothing now.
			b.log.Warn("service definition unreadable; counted as granting nothing",
				"service", list[i], "error", errs[i])
			continue
		}
		bs, err := parseBlocks(out)
		if err != nil || len(bs) != 1 {
			return nil, fmt.Errorf("parsing service %s: %q", list[i], out)
		}
		for _, p := range bs[0].Fields["ports"] {
			ps, err := parsePortSpec(p)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", list[i], err)
			}
			svc[list[i]] = append(svc[list[i]], ps)
		}
	}
	return svc, nil
}

// Read returns the rules in force (the runtime configuration), with the
// differences from the permanent configuration as findings.
func (b *Backend) Read(ctx context.Context) (*plan.State, error) {
	rd, err := b.read(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.seen = &[2][]string{sortedKeys(rd.runtime.Policies), sortedKeys(rd.permanent.Policies)}
	b.mu.Unlock()
	st := rd.translate()
	b.log.Debug("read", "rules", len(st.Scopes[0].Rules), "findings", len(st.Findings))
	return st, nil
}

func (b *Backend) read(ctx context.Context) (*reading, error) {
	rt, perm, extra, err := b.readViews(ctx)
	if err != nil {
		return nil, err
	}
	if b.zone != "" && rt.Zones[b.zone] == nil {
		return nil, fmt.Errorf("reading firewalld: zone %q does not exist", b.zone)
	}
	rd := &reading{runtime: rt, permanent: perm, defaultZone: extra[0], zone: b.zone}
	if rd.services, err = b.readServices(ctx, rd); err != nil {
		return nil, err
	}
	rd.version = b.clientVersion(ctx)
	return rd, nil
}

// clientVersion is firewall-cmd's version, asked once per Backend.
func (b *Backend) clientVersion(ctx context.Context) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.version == "" {
		out, err := b.fc(ctx, "--version")
		if err != nil {
			return "(version unknown)"
		}
		b.version = strings.TrimSpace(out)
	}
	return b.version
}
