package iptables

import (
	"context"
	"github.com/mailfw/mailfw/internal/golden"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
)

// host is one network namespace with its own netfilter tables and a
// backend pointed at it.
type host struct {
	t    *testing.T
	ns   *sandbox.Netns
	mode Mode
	b    *Backend
}

// newHost makes a namespace for mode. forced skips mode detection.
func newHost(t *testing.T, mode Mode, forced bool) *host {
	t.Helper()
	sandbox.Require(t, "iptables"+mode.suffix()+"-save", "iptables"+mode.suffix()+"-restore",
		"ip6tables"+mode.suffix()+"-save", "ip6tables"+mode.suffix()+"-restore")
	h := &host{t: t, ns: sandbox.NewNetns(t), mode: mode}
	h.b = h.backend(forced)
	return h
}

func (h *host) backend(forced bool, opts ...Option) *Backend {
	logger := slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts = append([]Option{
		WithRunner(execx.New(logger, execx.WithPrefix(h.ns.Prefix()...))),
		WithLogger(logger),
	}, opts...)
	if forced {
		opts = append(opts, WithMode(h.mode))
	}
	return New(opts...)
}

func (h *host) prog(f plan.Family, verb string) string {
	base := "iptables"
	if f == plan.IPv6 {
		base = "ip6tables"
	}
	return base + h.mode.suffix() + "-" + verb
}

// cmd is the rule-editing program of the family and mode.
func (h *host) cmd(f plan.Family) string {
	p := h.prog(f, "")
	return p[:len(p)-1]
}

// restore loads a whole filter table into the namespace, as an
// administrator or another tool would have set it up.
func (h *host) restore(f plan.Family, text string) {
	h.t.Helper()
	cmd := exec.Command("ip", append(h.ns.Prefix()[1:], h.prog(f, "restore"))...)
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("loading %s rules: %v\n%s", f, err, out)
	}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// save is the family's filter table as iptables-save prints it, without
// the comment lines and with counters zeroed.
func (h *host) save(f plan.Family) string {
	h.t.Helper()
	out := h.ns.Run(h.prog(f, "save"), "-t", "filter")
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "#") {
			b.WriteString(counters.ReplaceAllString(line, "[0:0]"))
		}
	}
	return b.String()
}

// others is save without anything that belongs to mailfw.
func (h *host) others(f plan.Family) string {
	var b strings.Builder
	for line := range strings.Lines(h.save(f)) {
		if !strings.Contains(line, Chain) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func policy(t *testing.T, yaml string) *plan.Policy {
	t.Helper()
	p, err := plan.ParsePolicy("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p
}

// plan reads the namespace and diffs it against the policy.
func (h *host) plan(p *plan.Policy) plan.TargetPlan {
	h.t.Helper()
	tp, err := plan.PlanTarget(context.Background(), p, p.Targets[0], h.b)
	if err != nil {
		h.t.Fatalf("plan: %v", err)
	}
	return tp
}

// apply plans and applies p, and checks every change was made.
func (h *host) apply(p *plan.Policy) plan.TargetPlan {
	h.t.Helper()
	tp := h.plan(p)
	done, err := h.b.Apply(context.Background(), tp.Changes)
	if err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	if len(done) != len(tp.Changes) {
		h.t.Fatalf("apply made %d of %d changes", len(done), len(tp.Changes))
	}
	return tp
}

// converged fails the test unless a fresh plan has no changes.
func (h *host) converged(p *plan.Policy) {
	h.t.Helper()
	if tp := h.plan(p); len(tp.Changes) != 0 {
		h.t.Errorf("second plan has %d changes, want none:\n%s", len(tp.Changes), changeList(tp.Changes))
	}
}

func changeList(cs []plan.Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(string(c.Action) + " " + c.Rule.String() + " (" + string(c.Reason) + ")\n")
	}
	return b.String()
}

const mailPolicy = `version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
  blocklist: [192.0.2.99, "2001:db8:bad::/48"]
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [office]
    description: office clients
  - port: smtps
    from: [office]
    limit: {connections_per_source: 10}
    description: office clients
deny:
  - port: smtp
    from: [blocklist]
    description: known spammers
targets:
  - name: host
    type: iptables
`

// otherRules is a host set up by others: SSH open, fail2ban banning one
// address on the mail ports, a catch-all REJECT and policy DROP.
var otherRules = map[plan.Family]string{
	plan.IPv4: `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:f2b-postfix - [0:0]
-A INPUT -p tcp -m multiport --dports 25,465,587 -j f2b-postfix
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh from anywhere" -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A f2b-postfix -s 198.51.100.66/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-postfix -j RETURN
COMMIT
`,
	plan.IPv6: `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:f2b-postfix - [0:0]
-A INPUT -p tcp -m multiport --dports 25,465,587 -j f2b-postfix
-A INPUT -i lo -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp6-adm-prohibited
-A f2b-postfix -s 2001:db8:bad:1::66/128 -j REJECT --reject-with icmp6-port-unreachable
-A f2b-postfix -j RETURN
COMMIT
`,
}

var families = []plan.Family{plan.IPv4, plan.IPv6}

var modes = []Mode{ModeNFT, ModeLegacy}

func TestApply_emptyHostGetsTheChainAndConverges(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, m == ModeLegacy)
			p := policy(t, mailPolicy)
			tp := h.apply(p)
			if tp.Kind != m.Kind() {
				t.Errorf("Kind = %q, want %q", tp.Kind, m.Kind())
			}
			for _, f := range families {
				golden.Check(t, "empty-host."+string(f)+".golden", h.save(f))
			}
			h.converged(p)
		})
	}
}

func TestApply_leavesOtherRulesByteForByte(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			// No forced mode: detection must find the rules in this mode.
			h := newHost(t, m, false)
			for _, f := range families {
				h.restore(f, otherRules[f])
			}
			before := map[plan.Family]string{}
			for _, f := range families {
				before[f] = h.save(f)
			}
			p := policy(t, mailPolicy)
			tp := h.apply(p)
			if tp.Kind != m.Kind() {
				t.Errorf("detected %q, want %q", tp.Kind, m.Kind())
			}
			for _, f := range families {
				if diff := cmp.Diff(before[f], h.others(f)); diff != "" {
					t.Errorf("%s rules outside mailfw changed (-before +after):\n%s", f, diff)
				}
				golden.Check(t, "other-rules."+string(f)+".golden", h.save(f))
				assertJumpBeforeCatchAll(t, h.save(f))
			}
			h.converged(p)
		})
	}
}

// assertJumpBeforeCatchAll checks the jump sits right before the final
// REJECT and after fail2ban's jump.
func assertJumpBeforeCatchAll(t *testing.T, listing string) {
	t.Helper()
	var input []string
	for line := range strings.Lines(listing) {
		if strings.HasPrefix(line, "-A INPUT ") {
			input = append(input, strings.TrimSpace(line))
		}
	}
	jump := slices.Index(input, "-A INPUT -m comment --comment mailfw -j "+Chain)
	f2b := slices.IndexFunc(input, func(s string) bool { return strings.HasSuffix(s, "-j f2b-postfix") })
	if jump < 0 || jump != len(input)-2 || !strings.Contains(input[len(input)-1], "-j REJECT") || f2b > jump {
		t.Errorf("jump at %d of INPUT, want just before the catch-all and after fail2ban:\n%s",
			jump, strings.Join(input, "\n"))
	}
}

func TestApply_removingAnEntryRemovesOnlyItsRules(t *testing.T) {
	h := newHost(t, ModeNFT, false)
	for _, f := range families {
		h.restore(f, otherRules[f])
	}
	h.apply(policy(t, mailPolicy))
	before := map[plan.Family]string{}
	for _, f := range families {
		before[f] = h.save(f)
	}
	smaller := strings.Replace(mailPolicy, `  - port: submission
    from: [office]
    description: office clients
`, "", 1)
	tp := h.apply(policy(t, smaller))
	if len(tp.Changes) != 2 {
		t.Errorf("plan has %d changes, want the 2 removals:\n%s", len(tp.Changes), changeList(tp.Changes))
	}
	for _, f := range families {
		gone := lineDiff(before[f], h.save(f))
		want := 1
		if len(gone) != want || !strings.Contains(gone[0], "--dport 587") ||
			!strings.Contains(gone[0], "mailfw: office clients") {
			t.Errorf("%s: removed lines %q, want the one 587 allow", f, gone)
		}
		if added := lineDiff(h.save(f), before[f]); len(added) != 0 {
			t.Errorf("%s: lines added by a removal: %q", f, added)
		}
	}
	h.converged(policy(t, smaller))
}

// lineDiff returns the lines of a that b lacks.
func lineDiff(a, b string) []string {
	have := map[string]int{}
	for l := range strings.Lines(b) {
		have[l]++
	}
	var out []string
	for l := range strings.Lines(a) {
		if have[l] > 0 {
			have[l]--
			continue
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

const emptyPolicy = `version: 1
allow: []
targets:
  - name: host
    type: iptables
`

func TestApply_emptyPolicyLeavesNothingBehind(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, false)
			for _, f := range families {
				h.restore(f, otherRules[f])
			}
			before := map[plan.Family]string{}
			for _, f := range families {
				before[f] = h.save(f)
			}
			h.apply(policy(t, mailPolicy))
			h.apply(policy(t, emptyPolicy))
			for _, f := range families {
				if diff := cmp.Diff(before[f], h.save(f)); diff != "" {
					t.Errorf("%s after removing everything (-before +after):\n%s", f, diff)
				}
			}
			h.converged(policy(t, emptyPolicy))
		})
	}
}

func TestApply_descriptionWithShellCharactersRoundTrips(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, true)
			desc := `it's "quoted" $(rm -rf /) ` + "`id`" + ` ; | & > \ -x #1 Größe 中文`
			long := "--comment " + strings.Repeat("é", 200) // cut to fit the kernel's 255 bytes
			stored, _ := StoredDescription(long)
			quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
			p := policy(t, `version: 1
allow:
  - port: smtp
    from: [anywhere]
    description: `+quote(desc)+`
  - port: submission
    from: [anywhere]
    description: `+quote(long)+`
targets:
  - name: host
    type: iptables
`)
			h.apply(p)
			h.converged(p)
			st, err := h.b.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, o := range st.Scopes[0].Rules {
				if o.Owned {
					got[o.Description]++
				}
			}
			if diff := cmp.Diff(map[string]int{desc: 2, stored: 2}, got); diff != "" {
				t.Errorf("descriptions read back (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApply_movesAJumpThatSitsAfterTheCatchAll(t *testing.T) {
	h := newHost(t, ModeLegacy, false)
	h.restore(plan.IPv4, `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:MAILFW-INPUT - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-port-unreachable
-A INPUT -m comment --comment mailfw -j MAILFW-INPUT
-A MAILFW-INPUT -p tcp -m tcp --dport 25 -m comment --comment mailfw -j ACCEPT
COMMIT
`)
	p := policy(t, `version: 1
allow:
  - port: smtp
    from: [anywhere-ipv4]
targets:
  - name: host
    type: iptables
`)
	if tp := h.apply(p); len(tp.Changes) == 0 {
		t.Error("the plan ignores that the chain is not reached")
	}
	golden.Check(t, "moved-jump.ipv4.golden", h.save(plan.IPv4))
	h.converged(p)
}

// racingRunner runs the backend's programs in h's namespace through a
// script that plays another program: just before the first IPv6 commit
// (a restore without --test) it adds "-A OTHER -j MAILFW-INPUT" with the
// real ip6tables, after the backend read and validated the table.
func racingRunner(t *testing.T, h *host) *execx.Runner {
	t.Helper()
	dir := t.TempDir()
	mark, script := filepath.Join(dir, "raced"), filepath.Join(dir, "race.sh")
	text := `#!/bin/sh
case "$5" in
ip6tables*-restore)
	case " $* " in
	*" --test "*) ;;
	*) if [ ! -e ` + mark + ` ]; then
		: > ` + mark + `
		"$1" "$2" "$3" "$4" ` + h.cmd(plan.IPv6) + ` -A OTHER -j ` + Chain + `
	fi ;;
	esac ;;
esac
exec "$@"
`
	if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	return execx.New(logger, execx.WithPrefix(append([]string{script}, h.ns.Prefix()...)...))
}

// TestApply_failedIPv6WriteSaysWhatWasDone makes the IPv6 commit fail
// for real: between the read and the commit another program makes a rule
// jump to mailfw's chain, so the kernel refuses to delete it. IPv4 is
// written by then; the error and the returned changes say exactly what
// happened, and a rerun, which now sees the rule, keeps the chain and
// converges.
func TestApply_failedIPv6WriteSaysWhatWasDone(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, true)
			h.apply(policy(t, mailPolicy))
			h.ns.Run(h.cmd(plan.IPv6), "-N", "OTHER")
			before6 := h.save(plan.IPv6)
			tp := h.plan(policy(t, emptyPolicy))
			racing := New(WithRunner(racingRunner(t, h)), WithMode(m))
			done, err := racing.Apply(context.Background(), tp.Changes)
			if err == nil {
				t.Fatal("apply succeeded although the IPv6 chain could not be deleted")
			}
			if !strings.Contains(err.Error(), "applied ipv4 (4 changes); not applied: ipv6 (4 changes)") {
				t.Errorf("error %v does not say what was applied", err)
			}
			if len(done) != 4 || slices.ContainsFunc(done, func(c plan.Change) bool { return c.Rule.Family != plan.IPv4 }) {
				t.Errorf("done = %s, want the 4 ipv4 changes", changeList(done))
			}
			if strings.Contains(h.save(plan.IPv4), Chain) {
				t.Error("ipv4 still has mailfw's chain")
			}
			after6 := strings.Replace(h.save(plan.IPv6), "-A OTHER -j "+Chain+"\n", "", 1)
			if diff := cmp.Diff(before6, after6); diff != "" {
				t.Errorf("ipv6 changed by a failed transaction (-before +after):\n%s", diff)
			}
			h.apply(policy(t, emptyPolicy))
			h.converged(policy(t, emptyPolicy))
		})
	}
}

// TestApply_chainAnotherRuleJumpsToIsKeptEmpty: when a rule outside INPUT
// jumps to mailfw's chain, emptying the policy flushes the chain and
// removes the jump from INPUT but keeps the chain, says so, and converges.
func TestApply_chainAnotherRuleJumpsToIsKeptEmpty(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, true)
			h.apply(policy(t, mailPolicy))
			for _, f := range families {
				h.ns.Run(h.cmd(f), "-A", "FORWARD", "-j", Chain)
			}
			tp := h.apply(policy(t, emptyPolicy))
			if !slices.ContainsFunc(tp.Findings, func(f plan.Finding) bool { return f.ID == FindingForeignJump }) {
				t.Errorf("no %s finding in %+v", FindingForeignJump, tp.Findings)
			}
			for _, f := range families {
				want := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:" + Chain +
					" - [0:0]\n-A FORWARD -j " + Chain + "\nCOMMIT\n"
				if diff := cmp.Diff(want, h.save(f)); diff != "" {
					t.Errorf("%s after emptying the policy (-want +got):\n%s", f, diff)
				}
			}
			h.converged(policy(t, emptyPolicy))
			h.apply(policy(t, mailPolicy))
			h.converged(policy(t, mailPolicy))
			for _, f := range families {
				assertOneJump(t, h.save(f))
			}
		})
	}
}

// assertOneJump checks INPUT has exactly mailfw's one plain jump.
func assertOneJump(t *testing.T, listing string) {
	t.Helper()
	if n := strings.Count(listing, "-A INPUT -m comment --comment mailfw -j "+Chain+"\n"); n != 1 ||
		strings.Count(listing, "-j "+Chain) != 2 {
		t.Errorf("want one jump from INPUT and the FORWARD one:\n%s", listing)
	}
}

func TestRead_reportsPolicyAndJumpInExtra(t *testing.T) {
	h := newHost(t, ModeNFT, false)
	for _, f := range families {
		h.restore(f, otherRules[f])
	}
	st, err := h.b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.ns.Run("iptables-nft", "-P", "INPUT", "ACCEPT")
	st2, err := h.b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest() == st2.Digest() || !strings.Contains(st.Extra, "policy DROP") {
		t.Errorf("changing INPUT's policy left the state digest alone: %q vs %q", st.Extra, st2.Extra)
	}
}

func TestProbe_seesRulesInTheirMode(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, false)
			r := execx.New(slog.New(slog.DiscardHandler), execx.WithPrefix(h.ns.Prefix()...))
			if active, detail, err := Probe(context.Background(), r); err != nil || active {
				t.Errorf("empty namespace: active=%t detail=%q err=%v", active, detail, err)
			}
			h.restore(plan.IPv4, otherRules[plan.IPv4])
			active, detail, err := Probe(context.Background(), r)
			if err != nil || !active || !strings.Contains(detail, m.Kind()) {
				t.Errorf("after loading rules: active=%t detail=%q err=%v", active, detail, err)
			}
		})
	}
}

func TestApply_newDescriptionIsAnUpdateInPlace(t *testing.T) {
	h := newHost(t, ModeNFT, false)
	h.apply(policy(t, mailPolicy))
	renamed := policy(t, strings.ReplaceAll(mailPolicy, "office clients", "office staff"))
	tp := h.apply(renamed)
	if len(tp.Changes) != 4 || slices.ContainsFunc(tp.Changes, func(c plan.Change) bool { return c.Action != plan.Update }) {
		t.Errorf("plan, want 4 updates:\n%s", changeList(tp.Changes))
	}
	for _, f := range families {
		listing := h.save(f)
		if strings.Contains(listing, "office clients") || strings.Count(listing, `"mailfw: office staff"`) != 3 {
			t.Errorf("%s after the update:\n%s", f, listing)
		}
	}
	h.converged(renamed)
}

func TestApply_jumpGoesBeforeTheFirstCatchAll(t *testing.T) {
	tests := []struct {
		name  string
		rules string // INPUT and other chains, as restore lines
		want  int    // index of the jump in INPUT afterwards
	}{
		{"policy-drop-no-catch-all", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n", 1},
		{"catch-all-in-a-chain", ":LOGDROP - [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -j LOGDROP\n" +
			"-A LOGDROP -j LOG\n-A LOGDROP -j DROP\n", 1},
		{"interface-drop-is-a-catch-all", "-A INPUT -i eth9 -j DROP\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n", 0},
		{"state-new-reject-is-a-catch-all", "-A INPUT -m conntrack --ctstate NEW -j REJECT\n", 0},
		{"syn-drop-is-a-catch-all", "-A INPUT -p tcp -m tcp --syn -j DROP\n", 0},
		{"destination-drop-is-a-catch-all", "-A INPUT -d 192.0.2.1/32 -j DROP\n", 0},
		{"invalid-drop-is-not", "-A INPUT -m conntrack --ctstate INVALID -j DROP\n-A INPUT -j DROP\n", 1},
		{"not-syn-drop-is-not", "-A INPUT -p tcp -m tcp ! --syn -m state --state NEW -j DROP\n-A INPUT -j DROP\n", 1},
		{"range-ban-stays-above", "-A INPUT -m iprange --src-range 198.51.100.1-198.51.100.9 -j DROP\n" +
			"-A INPUT -i eth9 -j REJECT\n", 1},
		{"ban-chain-stays-above", ":SMTP-IN - [0:0]\n-A INPUT -p tcp -m multiport --dports 25,465,587 -j SMTP-IN\n" +
			"-A INPUT -j REJECT\n-A SMTP-IN -s 192.0.2.66/32 -j DROP\n-A SMTP-IN -s 10.0.0.0/8 -j ACCEPT\n" +
			"-A SMTP-IN -j REJECT\n", 1},
		{"jump-with-a-source-is-replaced", ":MAILFW-INPUT - [0:0]\n-A INPUT -s 192.0.2.1/32 -m comment --comment mailfw -j MAILFW-INPUT\n" +
			"-A INPUT -j REJECT\n", 0},
		{"jump-with-a-port-is-replaced", ":MAILFW-INPUT - [0:0]\n" +
			"-A INPUT -p tcp -m tcp --dport 25 -m comment --comment mailfw -j MAILFW-INPUT\n-A INPUT -j REJECT\n", 0},
		{"goto-is-replaced", ":MAILFW-INPUT - [0:0]\n-A INPUT -m comment --comment mailfw -g MAILFW-INPUT\n" +
			"-A INPUT -j REJECT\n", 0},
		{"jump-above-a-ban-moves-below-it", ":MAILFW-INPUT - [0:0]\n-A INPUT -m comment --comment mailfw -j MAILFW-INPUT\n" +
			"-A INPUT -s 198.51.100.9/32 -j DROP\n-A INPUT -j DROP\n", 1},
		{"udp-reject-is-not-mail", "-A INPUT -p udp -j REJECT\n-A INPUT -j REJECT\n", 1},
		{"mail-port-drop", "-A INPUT -p tcp -m tcp --dport 80 -j DROP\n-A INPUT -p tcp -m multiport --dports 25,587 -j DROP\n", 1},
		{"source-ban-stays-above", "-A INPUT -s 198.51.100.9/32 -j DROP\n-A INPUT -j DROP\n", 1},
		{"existing-jump-in-force-stays", ":MAILFW-INPUT - [0:0]\n-A INPUT -j MAILFW-INPUT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n" +
			"-A INPUT -j DROP\n", 0},
	}
	p := policy(t, `version: 1
allow:
  - port: smtp
    from: [anywhere-ipv4]
targets:
  - name: host
    type: iptables
`)
	for _, tt := range tests {
		for _, m := range modes {
			t.Run(tt.name+"/"+string(m), func(t *testing.T) {
				h := newHost(t, m, true)
				h.restore(plan.IPv4, "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"+tt.rules+"COMMIT\n")
				h.apply(p)
				var input []string
				for line := range strings.Lines(h.save(plan.IPv4)) {
					if strings.HasPrefix(line, "-A INPUT ") {
						input = append(input, strings.TrimSpace(line))
					}
				}
				got := slices.IndexFunc(input, func(s string) bool { return strings.HasSuffix(s, "-j "+Chain) })
				if got != tt.want || strings.Count(strings.Join(input, "\n"), Chain) != 1 ||
					!parseRule("INPUT", strings.Fields(input[got])[2:]).isJump() {
					t.Errorf("jump at %d, want %d:\n%s", got, tt.want, strings.Join(input, "\n"))
				}
				h.converged(p)
			})
		}
	}
}

func TestPlan_unmarkedAllowSatisfiesAndIsLeftAlone(t *testing.T) {
	h := newHost(t, ModeNFT, true)
	h.restore(plan.IPv4, "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"+
		"-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT\n-A INPUT -j REJECT\nCOMMIT\n")
	before := h.save(plan.IPv4)
	p := policy(t, `version: 1
allow:
  - port: smtp
    from: [anywhere-ipv4]
ownership: exclusive
targets:
  - name: host
    type: iptables
`)
	tp := h.plan(p)
	if len(tp.Changes) != 0 || len(tp.Satisfied) != 1 {
		t.Fatalf("plan: %d changes, %d satisfied; want none and one:\n%s", len(tp.Changes), len(tp.Satisfied),
			changeList(tp.Changes))
	}
	if _, err := h.b.Apply(context.Background(), tp.Changes); err != nil {
		t.Fatal(err)
	}
	if after := h.save(plan.IPv4); after != before {
		t.Errorf("an empty apply changed the table:\n%s", after)
	}
}

func TestApply_withoutIp6tablesPlansIPv4Only(t *testing.T) {
	h := newHost(t, ModeNFT, false)
	dir := t.TempDir()
	for _, name := range []string{"ip", "iptables-nft-save", "iptables-nft-restore"} {
		real, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	h.b = h.backend(false)
	if h.b.Capabilities().IPv6 {
		t.Fatal("Capabilities says IPv6 without ip6tables")
	}
	p := policy(t, mailPolicy)
	tp := h.apply(p)
	if slices.ContainsFunc(tp.Changes, func(c plan.Change) bool { return c.Rule.Family != plan.IPv4 }) {
		t.Errorf("plan has IPv6 changes:\n%s", changeList(tp.Changes))
	}
	if !slices.ContainsFunc(tp.Findings, func(f plan.Finding) bool { return f.ID == plan.FindingNoIPv6 }) {
		t.Errorf("no %s finding in %+v", plan.FindingNoIPv6, tp.Findings)
	}
	golden.Check(t, "empty-host.ipv4.golden", h.save(plan.IPv4))
	h.converged(p)
}

func TestRead_rulesInBothModesPickTheFullerOneAndSaySo(t *testing.T) {
	h := newHost(t, ModeLegacy, false)
	h.restore(plan.IPv4, otherRules[plan.IPv4])
	h.ns.Run("iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	st, err := h.b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Kind != ModeLegacy.Kind() {
		t.Errorf("Kind = %q, want the mode with more rules, %q", st.Kind, ModeLegacy.Kind())
	}
	if !slices.ContainsFunc(st.Findings, func(f plan.Finding) bool { return f.ID == FindingMixedModes }) {
		t.Errorf("no %s finding in %+v", FindingMixedModes, st.Findings)
	}
}

func TestProbe_unreadableRulesAreInactiveNotAnError(t *testing.T) {
	sandbox.Require(t, "iptables-nft-save")
	// A namespace that does not exist: every iptables-save fails for real.
	r := execx.New(slog.New(slog.DiscardHandler), execx.WithPrefix("ip", "netns", "exec", "mfwt-absent"))
	active, detail, err := Probe(context.Background(), r)
	if err != nil || active || !strings.Contains(detail, "reading iptables rules") {
		t.Errorf("active=%t detail=%q err=%v; want inactive with the reason", active, detail, err)
	}
}

func TestRead_banComingAndGoingKeepsTheDigest(t *testing.T) {
	h := newHost(t, ModeNFT, true)
	for _, f := range families {
		h.restore(f, otherRules[f])
	}
	h.apply(policy(t, mailPolicy))
	st, err := h.b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.ns.Run("iptables-nft", "-I", "f2b-postfix", "1", "-s", "198.51.100.77", "-j", "REJECT")
	h.ns.Run("ip6tables-nft", "-D", "f2b-postfix", "1")
	st2, err := h.b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest() != st2.Digest() {
		t.Error("a fail2ban ban added and one lifted changed the state digest")
	}
	bans := 0
	for _, o := range st2.Scopes[0].Rules {
		if o.Source == "198.51.100.77/32" {
			bans++
			if !o.Volatile || o.Verdict != plan.Deny {
				t.Errorf("new ban read as %+v", o)
			}
		}
	}
	if bans != 3 {
		t.Errorf("the new ban is %d Observed rules, want one per mail port", bans)
	}
}

func TestRead_legacyIPv6RulesNextToNFTAreAFinding(t *testing.T) {
	h := newHost(t, ModeNFT, false)
	h.apply(policy(t, mailPolicy))
	h.ns.Run("ip6tables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "25", "-j", "DROP")
	st, err := h.backend(false).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Kind != ModeNFT.Kind() {
		t.Errorf("Kind = %q, want the mode with more rules, %q", st.Kind, ModeNFT.Kind())
	}
	i := slices.IndexFunc(st.Findings, func(f plan.Finding) bool { return f.ID == FindingMixedModes })
	if i < 0 {
		t.Fatalf("no %s finding in %+v", FindingMixedModes, st.Findings)
	}
	if !strings.Contains(st.Findings[i].Message, "legacy: 0 IPv4, 1 IPv6") {
		t.Errorf("finding does not count the legacy IPv6 rule: %s", st.Findings[i].Message)
	}
}

func TestProbe_seesIPv6OnlyRules(t *testing.T) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, false)
			h.ns.Run(h.cmd(plan.IPv6), "-A", "INPUT", "-p", "tcp", "--dport", "25", "-j", "DROP")
			r := execx.New(slog.New(slog.DiscardHandler), execx.WithPrefix(h.ns.Prefix()...))
			active, detail, err := Probe(context.Background(), r)
			if err != nil || !active || !strings.Contains(detail, m.Kind()+": 0 IPv4 rules, 1 IPv6 rules") {
				t.Errorf("active=%t detail=%q err=%v; want active in %s", active, detail, err, m)
			}
		})
	}
}
