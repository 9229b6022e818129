package iptables

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/plan"
)

// Mode is the kernel interface the iptables tools drive.
type Mode string

// The modes: iptables-nft (rules in nf_tables) and iptables-legacy
// (x_tables).
const (
	ModeNFT    Mode = "nf_tables"
	ModeLegacy Mode = "legacy"
)

// Kind is what State.Kind says for the mode.
func (m Mode) Kind() string { return "iptables (" + string(m) + ")" }

func (m Mode) suffix() string {
	if m == ModeLegacy {
		return "-legacy"
	}
	return "-nft"
}

// tool returns the program for one family and mode: "iptables-nft-save",
// or the plain "iptables-save" where the variant is not installed.
func tool(r *execx.Runner, m Mode, f plan.Family, verb string) string {
	base := "iptables"
	if f == plan.IPv6 {
		base = "ip6tables"
	}
	if name := base + m.suffix() + "-" + verb; r.Has(name) {
		return name
	}
	return base + "-" + verb
}

// hasMode reports whether the tools of mode m are installed as such.
func hasMode(r *execx.Runner, m Mode) bool {
	return r.Has("iptables" + m.suffix() + "-save")
}

// defaultMode is the mode the plain "iptables" command uses, read from
// where its alternatives symlink points (xtables-nft-multi or
// xtables-legacy-multi).
func defaultMode(r *execx.Runner) Mode {
	p, err := r.LookPath("iptables")
	if err != nil {
		return ModeNFT
	}
	if real, err := filepath.EvalSymlinks(p); err == nil && strings.Contains(filepath.Base(real), "legacy") {
		return ModeLegacy
	}
	return ModeNFT
}

// modeCounts is what detection saw: the rules each mode holds in both
// families (nft6 and legacy6 of them IPv6), or the error reading IPv4.
type modeCounts struct {
	nft, legacy       int
	nft6, legacy6     int
	nftErr, legacyErr error
}

// pickMode chooses the mode that holds rules. With rules in both, the one
// with more wins (the other is reported as a finding); with none, the
// default the system's "iptables" uses.
func pickMode(c modeCounts, def Mode) (Mode, string) {
	switch {
	case c.nftErr != nil && c.legacyErr != nil:
		return def, "neither mode could be read"
	case c.nftErr != nil:
		return ModeLegacy, "only legacy could be read"
	case c.legacyErr != nil:
		if c.nft == 0 {
			return def, "no rules; legacy could not be read"
		}
		return ModeNFT, "rules in nf_tables; legacy could not be read"
	case c.nft == 0 && c.legacy == 0:
		return def, "no rules in either mode"
	case c.legacy > c.nft:
		return ModeLegacy, fmt.Sprintf("%d legacy rules, %d nf_tables rules", c.legacy, c.nft)
	}
	return ModeNFT, fmt.Sprintf("%d nf_tables rules, %d legacy rules", c.nft, c.legacy)
}

// detection is the outcome of reading both modes.
type detection struct {
	mode   Mode
	reason string
	counts modeCounts
	// v4 and v6 are the iptables-save and ip6tables-save output of the
	// chosen mode, all tables; nil when not read.
	v4, v6 []byte
}

// detect reads the rules of both modes, both families, and picks one.
func detect(ctx context.Context, r *execx.Runner) (detection, error) {
	if !hasMode(r, ModeNFT) && !hasMode(r, ModeLegacy) {
		if !r.Has("iptables-save") {
			return detection{}, ErrNotInstalled
		}
		out, err := r.Run(ctx, nil, "iptables-save")
		if err != nil {
			return detection{}, fmt.Errorf("reading iptables rules: %w", err)
		}
		m := ModeLegacy
		if strings.Contains(firstLine(out), "nf_tables") {
			m = ModeNFT
		}
		return detection{mode: m, reason: "only iptables-save is installed", v4: out}, nil
	}
	var c modeCounts
	c.nftErr, c.legacyErr = errMissing, errMissing
	var nft, legacy modeRead
	var wg sync.WaitGroup
	if hasMode(r, ModeNFT) {
		wg.Go(func() { nft = readMode(ctx, r, ModeNFT) })
	}
	if hasMode(r, ModeLegacy) {
		wg.Go(func() { legacy = readMode(ctx, r, ModeLegacy) })
	}
	wg.Wait()
	if hasMode(r, ModeNFT) {
		c.nftErr, c.nft6 = nft.err, countRules(nft.v6)
		c.nft = countRules(nft.v4) + c.nft6
	}
	if hasMode(r, ModeLegacy) {
		c.legacyErr, c.legacy6 = legacy.err, countRules(legacy.v6)
		c.legacy = countRules(legacy.v4) + c.legacy6
	}
	if c.nftErr != nil && c.legacyErr != nil {
		return detection{}, fmt.Errorf("reading iptables rules: %w", c.nftErr)
	}
	d := detection{counts: c}
	d.mode, d.reason = pickMode(c, defaultMode(r))
	chosen := nft
	if d.mode == ModeLegacy {
		chosen = legacy
	}
	if chosen.err == nil {
		d.v4, d.v6 = chosen.v4, chosen.v6
	}
	return d, nil
}

// modeRead is the output of one mode's save programs. IPv6 that cannot
// be read (no ip6tables of that mode, no IPv6 in the kernel) counts as
// no rules.
type modeRead struct {
	v4, v6 []byte
	err    error
}

func readMode(ctx context.Context, r *execx.Runner, m Mode) modeRead {
	var out modeRead
	var wg sync.WaitGroup
	if name := "ip6tables" + m.suffix() + "-save"; r.Has(name) {
		wg.Go(func() {
			v6, err := r.Run(ctx, nil, name)
			if err == nil {
				out.v6 = v6
			}
		})
	}
	out.v4, out.err = r.Run(ctx, nil, "iptables"+m.suffix()+"-save")
	wg.Wait()
	return out
}

var errMissing = errors.New("not installed")

// ErrNotInstalled is returned when no iptables-save program is found.
var ErrNotInstalled = errors.New("iptables is not installed (no iptables-save found)")

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// Probe reports whether iptables is usable and holds rules, and which mode
// holds them. active is true when the chosen mode has at least one rule in
// any table of either family. It runs only iptables-save, so it changes nothing. Rules that
// cannot be read (not root, no kernel support) make it inactive, with the
// reason in detail, so that detection can still pick another firewall; err
// is only for a cancelled ctx.
func Probe(ctx context.Context, r *execx.Runner) (active bool, detail string, err error) {
	d, err := detect(ctx, r)
	if ctx.Err() != nil {
		return false, "", ctx.Err()
	}
	if errors.Is(err, ErrNotInstalled) {
		return false, err.Error(), nil
	}
	if err != nil {
		return false, err.Error(), nil
	}
	n4, n6 := countRules(d.v4), countRules(d.v6)
	return n4+n6 > 0, fmt.Sprintf("%s: %d IPv4 rules, %d IPv6 rules (%s)", d.mode.Kind(), n4, n6, d.reason), nil
}
