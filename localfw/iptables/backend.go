package iptables

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/plan"
)

var _ plan.Backend = (*Backend)(nil)

// The ids of the findings this backend adds to the ones plan computes.
const (
	FindingMixedModes      = "iptables-mixed-modes"
	FindingChainNotReached = "iptables-chain-not-reached"
	FindingForeignInChain  = "iptables-foreign-rule-in-chain"
	FindingForeignJump     = "iptables-foreign-jump-to-chain"
	FindingBanChainCloses  = "iptables-ban-chain-closes-port"
)

// Backend reads and writes the host's iptables and ip6tables filter tables.
type Backend struct {
	runner *execx.Runner
	logger *slog.Logger
	forced Mode

	mu       sync.Mutex
	detected Mode
}

// Option configures a Backend.
type Option func(*Backend)

// WithRunner runs every program through r (tests pass one that runs inside
// a network namespace).
func WithRunner(r *execx.Runner) Option { return func(b *Backend) { b.runner = r } }

// WithLogger sends the backend's logs to l.
func WithLogger(l *slog.Logger) Option { return func(b *Backend) { b.logger = l } }

// WithMode uses mode m instead of detecting which mode holds the rules.
func WithMode(m Mode) Option { return func(b *Backend) { b.forced = m } }

// New returns a backend. Without options it logs nowhere and runs the
// host's iptables tools directly.
func New(opts ...Option) *Backend {
	b := &Backend{}
	for _, o := range opts {
		o(b)
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	b.logger = b.logger.With("backend", "iptables")
	if b.runner == nil {
		b.runner = execx.New(b.logger)
	}
	return b
}

// Capabilities says the backend holds denies, limits and IPv6 (when
// ip6tables is installed), but no cloud references.
func (b *Backend) Capabilities() plan.Capabilities {
	return plan.Capabilities{
		Deny: true, Limit: true, IPv6: b.hasIPv6(),
		Description: StoredDescription,
	}
}

func (b *Backend) hasIPv6() bool {
	return b.runner.Has("ip6tables-restore") || b.runner.Has("ip6tables-nft-restore") ||
		b.runner.Has("ip6tables-legacy-restore")
}

// StoredDescription is the description as a rule comment keeps it:
// control characters become spaces, invalid UTF-8 is replaced, outer space
// is trimmed, and the text is cut (at a character boundary) so that
// "mailfw: " and it fit the 255 bytes the kernel stores. Every description
// can be stored, so it never fails.
func StoredDescription(d string) (string, error) {
	d = strings.ToValidUTF8(d, "\uFFFD")
	d = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, d)
	d = strings.TrimSpace(d)
	if limit := maxComment - len(Mark+": "); len(d) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(d[cut]) {
			cut--
		}
		d = strings.TrimSpace(d[:cut])
	}
	return d, nil
}

// mode returns the mode to use, detecting it on first use. The IPv4
// listing read while detecting is returned too, when there was one.
func (b *Backend) mode(ctx context.Context) (Mode, []byte, *detection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.forced != "" {
		return b.forced, nil, nil, nil
	}
	if b.detected != "" {
		return b.detected, nil, nil, nil
	}
	d, err := detect(ctx, b.runner)
	if err != nil {
		return "", nil, nil, err
	}
	b.logger.Info("chose iptables mode", "mode", d.mode, "reason", d.reason)
	b.detected = d.mode
	return d.mode, d.v4, &d, nil
}

// save reads one family's filter table.
func (b *Backend) save(ctx context.Context, m Mode, f plan.Family) (*table, error) {
	out, err := b.runner.Run(ctx, nil, tool(b.runner, m, f, "save"), "-t", "filter")
	if err != nil {
		return nil, fmt.Errorf("reading %s rules: %w", f, err)
	}
	t, err := parseSave(out, f)
	if err != nil {
		return nil, fmt.Errorf("parsing %s rules: %w", f, err)
	}
	return t, nil
}

// Read returns the rules of INPUT, the chains it jumps to and MAILFW-INPUT
// for both families, as one scope.
func (b *Backend) Read(ctx context.Context) (*plan.State, error) {
	m, v4out, det, err := b.mode(ctx)
	if err != nil {
		return nil, err
	}
	st := &plan.State{Kind: m.Kind(), IPv6: b.hasIPv6()}
	// The two families are read at the same time; each read is a program
	// start, which costs more than the parsing.
	var t6 *table
	var err6 error
	var wg sync.WaitGroup
	switch {
	case !st.IPv6:
	case det != nil && det.v6 != nil:
		if t6, err6 = parseSave(det.v6, plan.IPv6); err6 != nil {
			err6 = fmt.Errorf("parsing ipv6 rules: %w", err6)
		}
	default:
		wg.Go(func() { t6, err6 = b.save(ctx, m, plan.IPv6) })
	}
	var t4 *table
	if v4out != nil {
		if t4, err = parseSave(v4out, plan.IPv4); err != nil {
			err = fmt.Errorf("parsing ipv4 rules: %w", err)
		}
	} else {
		t4, err = b.save(ctx, m, plan.IPv4)
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	tables := []*table{t4}
	switch {
	case !st.IPv6:
	case err6 != nil:
		b.logger.Warn("ip6tables unusable; IPv6 is left unfiltered by mailfw", "err", err6)
		st.IPv6 = false
	default:
		tables = append(tables, t6)
	}
	describeState(st, tables, det)
	return st, nil
}

// countsOrZero is what detection counted, or nothing when the mode was
// given or detected earlier.
func (d *detection) countsOrZero() modeCounts {
	if d == nil {
		return modeCounts{}
	}
	return d.counts
}

// describeState fills st from the tables read.
func describeState(st *plan.State, tables []*table, det *detection) {
	views := make([]*view, len(tables))
	j, maxForeign := 1, 0
	var extra []string
	for i, t := range tables {
		views[i] = newView(t)
		j = max(j, views[i].before+1)
		maxForeign = max(maxForeign, len(views[i].foreign))
		extra = append(extra, views[i].lay.describe(t))
		st.Findings = append(st.Findings, views[i].findings()...)
	}
	step := orderStep(tables...)
	sc := plan.Scope{ID: ScopeID, DenyOrder: j*step + 1 + maxForeign, AllowOrder: j*step + step - 1}
	for _, v := range views {
		sc.Rules = append(sc.Rules, v.observe(j, step)...)
	}
	st.Scopes = []plan.Scope{sc}
	st.Extra = strings.Join(extra, "; ")
	if c := det.countsOrZero(); c.nft > 0 && c.legacy > 0 {
		st.Findings = append(st.Findings, plan.Finding{ID: FindingMixedModes, Severity: plan.High,
			Message: fmt.Sprintf("both iptables modes hold rules (nf_tables: %d IPv4, %d IPv6; legacy: %d IPv4, "+
				"%d IPv6); the kernel applies both, and mailfw manages only %s",
				c.nft-c.nft6, c.nft6, c.legacy-c.legacy6, c.legacy6, det.mode)})
	}
}

// findings are what a view says about mailfw's own chain.
func (v *view) findings() []plan.Finding {
	var fs []plan.Finding
	if len(v.entries) > 0 && !v.lay.inForce() {
		fs = append(fs, plan.Finding{ID: FindingChainNotReached, Severity: plan.Medium, Scope: ScopeID,
			Message: fmt.Sprintf("%s: the rules in %s do not take effect as mailfw means (%s); the plan writes "+
				"them again and apply puts one plain jump after the last ban and before the catch-all",
				v.t.family, Chain, v.lay.describe(v.t))})
	}
	if len(v.foreign) > 0 {
		fs = append(fs, plan.Finding{ID: FindingForeignInChain, Severity: plan.Low, Scope: ScopeID,
			Message: fmt.Sprintf("%s: %d rule(s) in %s lack the mailfw mark; mailfw keeps them, first in the chain",
				v.t.family, len(v.foreign), Chain)})
	}
	if len(v.lay.refs) > 0 {
		specs := make([]string, len(v.lay.refs))
		for i, r := range v.lay.refs {
			specs[i] = "-A " + r.chain + " " + r.spec()
		}
		fs = append(fs, plan.Finding{ID: FindingForeignJump, Severity: plan.Low, Scope: ScopeID,
			Message: fmt.Sprintf("%s: rule(s) outside INPUT jump to %s (%s): mailfw's rules also decide that "+
				"traffic, and the chain is kept, empty, when the policy has no rules", v.t.family, Chain,
				strings.Join(specs, "; "))})
	}
	input := v.t.rules["INPUT"]
	for _, i := range v.lay.blocked {
		fs = append(fs, plan.Finding{ID: FindingBanChainCloses, Severity: plan.High, Scope: ScopeID,
			Message: fmt.Sprintf("%s: INPUT rule %d (%s) jumps to %s, which bans some sources and then drops "+
				"or rejects the rest; mailfw's jump stays after it so the bans hold, and its allows for the "+
				"ports that chain closes have no effect until the chain ends in a RETURN instead",
				v.t.family, i+1, input[i].spec(), input[i].target)})
	}
	return fs
}
