package ufw

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/plan"
)

// ScopeID is the one scope a ufw target has: ufw's user rules, both families.
const ScopeID = "ufw"

// maxDescription is the most bytes of description mailfw stores after the
// mark. ufw itself sets no limit; this keeps "ufw status" readable.
const maxDescription = 200

// Files ufw keeps its state in, relative to the root (normally "/").
const (
	fileRules4   = "etc/ufw/user.rules"
	fileRules6   = "etc/ufw/user6.rules"
	fileDefaults = "etc/default/ufw"
	dirApps      = "etc/ufw/applications.d"
)

// ErrNoSSHAllow is returned when the target asks mailfw to enable ufw but no
// rule lets SSH in: enabling would lock the operator out.
var ErrNoSSHAllow = errors.New("ufw is inactive and no rule allows SSH (tcp/22); " +
	"refusing to enable it: add an SSH allow first")

// Backend reads and writes ufw's user rules through the ufw command.
type Backend struct {
	run    *execx.Runner
	logger *slog.Logger
	root   string
	enable bool
}

var _ plan.Backend = (*Backend)(nil)

// Option configures a Backend.
type Option func(*Backend)

// WithRunner runs ufw through r (tests pass one with a namespace prefix).
func WithRunner(r *execx.Runner) Option { return func(b *Backend) { b.run = r } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(b *Backend) { b.logger = l } }

// WithRoot reads ufw's files under dir instead of "/". It is for tests whose
// ufw runs in a private mount namespace holding dir's files; it must not be
// used to point mailfw at files ufw does not use.
func WithRoot(dir string) Option { return func(b *Backend) { b.root = dir } }

// WithEnable lets Apply enable an inactive ufw, and only when a rule allows
// SSH (the target's "enable: true").
func WithEnable(on bool) Option { return func(b *Backend) { b.enable = on } }

// New returns a ufw backend.
func New(opts ...Option) *Backend {
	b := &Backend{root: "/", logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(b)
	}
	b.logger = b.logger.With("backend", "ufw")
	if b.run == nil {
		b.run = execx.New(b.logger)
	}
	return b
}

// Capabilities: ufw holds deny rules and IPv6; its "limit" is a rate, not a
// per-source connection cap, so limits cannot be enforced.
func (b *Backend) Capabilities() plan.Capabilities {
	return plan.Capabilities{Deny: true, IPv6: true, OneRulePerMatch: true, Description: Description}
}

// Description maps a policy description to what ufw stores after the mark:
// ufw refuses a comment holding "'", so each becomes "’"; control characters
// (which break "ufw status") become spaces; the text is cut to 200 bytes.
func Description(s string) (string, error) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\'':
			return '’'
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	for len(s) > maxDescription {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s), nil
}

// config is what Read and Apply take from ufw's files.
type config struct {
	IPv6     bool
	Policy   string // DEFAULT_INPUT_POLICY
	Files    []fileRules
	Profiles map[string][]portRange
	Findings []plan.Finding
}

func (b *Backend) path(rel string) string { return filepath.Join(b.root, rel) }

// readConfig reads ufw's defaults, both user rules files and the
// application profiles. It runs no program.
func (b *Backend) readConfig() (*config, error) {
	def, err := os.ReadFile(b.path(fileDefaults))
	if err != nil {
		return nil, fmt.Errorf("reading ufw defaults: %w", err)
	}
	d := parseDefaults(def)
	c := &config{IPv6: d["IPV6"] == "yes", Policy: d["DEFAULT_INPUT_POLICY"]}
	c.Profiles, c.Findings = b.readProfiles()
	fams := []struct {
		fam  plan.Family
		file string
	}{{plan.IPv4, fileRules4}, {plan.IPv6, fileRules6}}
	for _, f := range fams {
		if f.fam == plan.IPv6 && !c.IPv6 {
			continue // ufw ignores user6.rules with IPV6=no
		}
		data, err := os.ReadFile(b.path(f.file))
		if err != nil {
			return nil, fmt.Errorf("reading ufw rules: %w", err)
		}
		tuples, probs := parseRules(data)
		c.Files = append(c.Files, fileRules{Family: f.fam, File: "/" + f.file,
			Tuples: tuples, Probs: probs})
	}
	return c, nil
}

func (b *Backend) readProfiles() (map[string][]portRange, []plan.Finding) {
	out := map[string][]portRange{}
	var findings []plan.Finding
	ents, err := os.ReadDir(b.path(dirApps))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		findings = append(findings, plan.Finding{ID: FindingAppUnreadable, Severity: plan.Low,
			Message: fmt.Sprintf("reading ufw application profiles: %v", err)})
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(b.path(dirApps), e.Name()))
		if err == nil {
			var profs map[string][]portRange
			profs, err = parseProfiles(data)
			for k, v := range profs {
				out[k] = v
			}
		}
		if err != nil {
			findings = append(findings, plan.Finding{ID: FindingAppUnreadable, Severity: plan.Low,
				Message: fmt.Sprintf("ufw application profile file %s: %v", e.Name(), err)})
		}
	}
	return out, findings
}

// observe translates the files into one scope and findings.
func (c *config) observe() (plan.Scope, []plan.Finding) {
	ob := &observer{profiles: c.Profiles}
	longest := 0
	for _, fr := range c.Files {
		ob.addFile(fr)
		longest = max(longest, len(fr.Tuples))
	}
	sc := plan.Scope{ID: ScopeID, Rules: ob.rules,
		// NOTE: existing rules have orders from 2; mailfw prepends its
		// denies (order 1, before every rule of their family) and appends
		// its allows (after every rule of either family).
		DenyOrder: 1, AllowOrder: longest + 2}
	return sc, append(append([]plan.Finding(nil), c.Findings...), ob.findings...)
}

// Read returns ufw's user rules of both families, whether ufw is active, and
// findings for what it cannot read. It runs "ufw status verbose" once and
// reads the rest from ufw's files.
func (b *Backend) Read(ctx context.Context) (*plan.State, error) {
	c, err := b.readConfig()
	if err != nil {
		return nil, err
	}
	st, err := b.status(ctx)
	if err != nil {
		return nil, err
	}
	sc, findings := c.observe()
	s := &plan.State{Kind: "ufw", Scopes: []plan.Scope{sc}, IPv6: c.IPv6, Findings: findings,
		Extra: fmt.Sprintf("active=%t default_input=%s", st.Active, c.Policy)}
	if !st.Active {
		b.logger.Info("ufw is inactive")
		s.Findings = append(s.Findings, plan.Finding{ID: FindingInactive, Severity: plan.High,
			Message: "ufw is inactive: its rules, and those mailfw writes, are not enforced " +
				"(enable it after allowing SSH, or set enable: true on the target)"})
	}
	if st.DefaultIncoming == "allow" || (!st.Active && c.Policy == "ACCEPT") {
		s.Findings = append(s.Findings, plan.Finding{ID: FindingDefaultAllow, Severity: plan.High,
			Message: "ufw's default incoming policy is allow: every port not denied is open"})
	}
	return s, nil
}

func (b *Backend) status(ctx context.Context) (status, error) {
	out, err := b.run.Run(ctx, nil, "ufw", "status", "verbose")
	if err != nil {
		return status{}, fmt.Errorf("reading ufw status: %w", err)
	}
	return parseStatus(out)
}
