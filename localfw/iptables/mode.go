package iptables

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

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

// modeCounts is what detection saw: the rules each mode holds, or the
// error reading them.
type modeCounts struct {
	nft, legacy       int
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
	// v4 is the IPv4 iptables-save output of the chosen mode, all tables.
	v4 []byte
}

// detect reads the IPv4 rules of both modes and picks one.
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
	var nftOut, legacyOut []byte
	c.nftErr, c.legacyErr = errMissing, errMissing
	if hasMode(r, ModeNFT) {
		nftOut, c.nftErr = r.Run(ctx, nil, "iptables-nft-save")
		c.nft = countRules(nftOut)
	}
	if hasMode(r, ModeLegacy) {
		legacyOut, c.legacyErr = r.Run(ctx, nil, "iptables-legacy-save")
		c.legacy = countRules(legacyOut)
	}
	if c.nftErr != nil && c.legacyErr != nil {
		return detection{}, fmt.Errorf("reading iptables rules: %w", c.nftErr)
	}
	d := detection{counts: c}
	d.mode, d.reason = pickMode(c, defaultMode(r))
	d.v4 = nftOut
	if d.mode == ModeLegacy {
		d.v4 = legacyOut
	}
	if (d.mode == ModeNFT && c.nftErr != nil) || (d.mode == ModeLegacy && c.legacyErr != nil) {
		d.v4 = nil
	}
	return d, nil
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
// any table. It runs only iptables-save, so it changes nothing. Rules that
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
	n := countRules(d.v4)
	return n > 0, fmt.Sprintf("%s: %d IPv4 rules (%s)", d.mode.Kind(), n, d.reason), nil
}
