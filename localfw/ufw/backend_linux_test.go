package ufw

import (
	"context"
	"errors"
	"fmt"
	"github.com/mailfw/mailfw/internal/golden"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
)

const mxPolicy = `version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
  relays: [198.51.100.10, 198.51.100.11]
  blocked: [192.0.2.66, "2001:db8:bad::1"]
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [office]
    description: bureau "Zürich" $(rm -rf /) ;&| ü
  - port: smtps
    from: [office, relays]
    description: Bob's relays
deny:
  - port: smtp
    from: [blocked]
targets:
  - name: host
    type: ufw
`

func TestApply_emptyFirewallMatchesGolden(t *testing.T) {
	f := newFixture(t, true)
	b := f.backend()
	tp := f.planApply(b, mxPolicy)
	// one status, one call for smtp in both families, one per other rule
	if n := f.calls.Load(); n != 10 {
		t.Errorf("ufw ran %d times, want 10", n)
	}
	if len(tp.Changes) != 10 {
		t.Errorf("first plan has %d changes, want 10 (2 smtp, 2 submission, 4 smtps, 2 deny)",
			len(tp.Changes))
	}
	golden.Check(t, "apply-mx.status-verbose.golden", f.statusVerbose())
	f.wantNoChanges(b, mxPolicy)

	noSMTP := strings.Replace(mxPolicy, "  - port: smtp\n    from: [anywhere]\n", "", 1)
	before := f.calls.Load()
	tp = f.planApply(b, noSMTP)
	if len(tp.Changes) != 2 {
		t.Errorf("dropping smtp from anywhere planned %d changes, want 2", len(tp.Changes))
	}
	// one status for the plan, one delete for both families
	if n := f.calls.Load() - before; n != 2 {
		t.Errorf("ufw ran %d times, want 2", n)
	}
	if out := f.statusVerbose(); strings.Contains(out, "ALLOW IN    Anywhere") {
		t.Errorf("an anywhere allow is left:\n%s", out)
	}
	f.wantNoChanges(b, noSMTP)
}

func TestApply_postfixProfileSatisfiesAndRemovalIsExact(t *testing.T) {
	f := newFixture(t, true)
	f.u.Run("ufw", "allow", "Postfix")
	f.u.Run("ufw", "allow", "22/tcp")
	f.u.Run("ufw", "allow", "proto", "tcp", "from", "203.0.113.5", "to", "any", "port", "587")
	f.u.Run("ufw", "allow", "proto", "tcp", "from", "198.51.100.0/24", "to", "any", "port", "587",
		"comment", "added by hand")
	before := f.unmarked()
	b := f.backend()

	policy := `version: 1
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [198.51.100.0/24, 192.0.2.0/24]
    description: clients
  - port: submission
    from: ["2001:db8:20::/48"]
targets: [{name: host, type: ufw}]
`
	tp := f.planApply(b, policy)
	var added []string
	for _, c := range tp.Changes {
		added = append(added, c.Rule.String())
		if c.Rule.Port == 25 {
			t.Errorf("port 25 added although the Postfix profile grants it: %s", c.Rule)
		}
		if c.Action != plan.Add {
			t.Errorf("unexpected %s %s", c.Action, c.Rule)
		}
	}
	if want := []string{
		`allow ipv4 tcp/587 from 192.0.2.0/24 "clients"`,
		"allow ipv6 tcp/587 from 2001:db8:20::/48",
	}; !cmp.Equal(want, added) {
		t.Errorf("added %q, want %q", added, want)
	}
	if len(tp.Satisfied) != 3 {
		t.Errorf("satisfied by unmarked rules: %d, want 3 (Postfix v4, Postfix v6, 198.51.100.0/24)",
			len(tp.Satisfied))
	}
	f.wantNoChanges(b, policy)

	smaller := strings.Replace(policy, `  - port: submission
    from: ["2001:db8:20::/48"]
`, "", 1)
	tp = f.planApply(b, smaller)
	if len(tp.Changes) != 1 || tp.Changes[0].Action != plan.Remove ||
		tp.Changes[0].Rule.Source != "2001:db8:20::/48" {
		t.Fatalf("removing the entry planned %v, want one removal", tp.Changes)
	}
	if d := cmp.Diff(before, f.unmarked()); d != "" {
		t.Errorf("unmarked rules changed (-before +after):\n%s", d)
	}
	got := strings.Join(f.tuples("/etc/ufw/user6.rules"), "\n")
	if strings.Contains(got, "2001:db8:20::/48") {
		t.Errorf("removed rule still in user6.rules:\n%s", got)
	}
	f.wantNoChanges(b, smaller)
}

func TestApply_denyComesFirstInBothFamilies(t *testing.T) {
	f := newFixture(t, true)
	f.u.Run("ufw", "allow", "25/tcp")
	f.u.Run("ufw", "allow", "proto", "tcp", "from", "192.0.2.0/24", "to", "any", "port", "25")
	b := f.backend()
	policy := `version: 1
sources:
  blocked: [192.0.2.66, "2001:db8:bad::1"]
allow:
  - port: smtp
    from: [anywhere]
deny:
  - port: smtp
    from: [blocked]
targets: [{name: host, type: ufw}]
`
	f.planApply(b, policy)
	for _, file := range []string{"/etc/ufw/user.rules", "/etc/ufw/user6.rules"} {
		ts := f.tuples(file)
		if len(ts) == 0 || !strings.HasPrefix(ts[0], "### tuple ### deny tcp 25 ") {
			t.Errorf("%s: first rule is not mailfw's deny:\n%s", file, strings.Join(ts, "\n"))
		}
	}
	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Scopes[0].Rules {
		if o.Owned && o.Verdict == plan.Deny && o.Order != 2 {
			t.Errorf("mailfw deny %s has order %d, want 2 (first of its family)", o, o.Order)
		}
	}
	f.wantNoChanges(b, policy)
}

func TestApply_updatesDescriptionAndVerdictInPlace(t *testing.T) {
	f := newFixture(t, true)
	b := f.backend()
	v1 := `version: 1
allow:
  - port: submission
    from: [198.51.100.7, "2001:db8::7"]
    description: old text
  - port: smtp
    from: [192.0.2.0/24, 192.0.2.66]
targets: [{name: host, type: ufw}]
`
	f.planApply(b, v1)
	v2 := `version: 1
allow:
  - port: submission
    from: [198.51.100.7, "2001:db8::7"]
    description: new «text»
  - port: smtp
    from: [192.0.2.0/24]
deny:
  - port: smtp
    from: [192.0.2.66]
targets: [{name: host, type: ufw}]
`
	before := f.calls.Load()
	tp := f.planApply(b, v2)
	counts := map[plan.Action]int{}
	for _, c := range tp.Changes {
		counts[c.Action]++
	}
	if want := map[plan.Action]int{plan.Update: 2, plan.Add: 1, plan.Remove: 1}; !cmp.Equal(want, counts) {
		t.Errorf("changes by action %v, want %v", counts, want)
	}
	// status, 2 comment updates, delete of the allow, prepend of the deny
	if n := f.calls.Load() - before; n != 5 {
		t.Errorf("ufw ran %d times, want 5", n)
	}
	ts := f.tuples("/etc/ufw/user.rules")
	if !strings.HasPrefix(ts[0], "### tuple ### deny tcp 25 0.0.0.0/0 any 192.0.2.66 in") {
		t.Errorf("deny is not first:\n%s", strings.Join(ts, "\n"))
	}
	f.wantNoChanges(b, v2)
}

func TestApply_fail2banBanStillBans(t *testing.T) {
	host, client := newLinkedFixture(t)
	host.u.Run("ufw", "allow", "22/tcp")
	host.u.Run("ufw", "insert", "1", "reject", "from", "192.0.2.4", "to", "any",
		"comment", "by Fail2Ban after 5 attempts against postfix")
	b := host.backend()
	host.planApply(b, `version: 1
allow:
  - port: smtp
    from: [anywhere]
deny:
  - port: smtp
    from: [192.0.2.3]
targets: [{name: host, type: ufw}]
`)
	ts := strings.Join(host.tuples("/etc/ufw/user.rules"), "\n")
	if !strings.Contains(ts, "reject any any 0.0.0.0/0 any 192.0.2.4 in comment=") {
		t.Errorf("the ban is gone:\n%s", ts)
	}
	wantConnect(t, client, "192.0.2.2", "192.0.2.1:25", true)
	wantConnect(t, client, "192.0.2.4", "192.0.2.1:25", false)
}

func TestApply_realPacketsBothFamilies(t *testing.T) {
	host, client := newLinkedFixture(t)
	b := host.backend()
	policy := `version: 1
sources:
  office: [192.0.2.2, "2001:db8::2"]
  blocked: [192.0.2.3, "2001:db8::3"]
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [office]
deny:
  - port: smtp
    from: [blocked]
targets: [{name: host, type: ufw}]
`
	host.planApply(b, policy)
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"192.0.2.2", "192.0.2.1:25", true},
		{"192.0.2.2", "192.0.2.1:587", true},
		{"192.0.2.3", "192.0.2.1:25", false},
		{"192.0.2.3", "192.0.2.1:587", false},
		{"2001:db8::2", "[2001:db8::1]:25", true},
		{"2001:db8::2", "[2001:db8::1]:587", true},
		{"2001:db8::3", "[2001:db8::1]:25", false},
		{"2001:db8::3", "[2001:db8::1]:587", false},
	} {
		wantConnect(t, client, c.from, c.to, c.ok)
	}
}

// newLinkedFixture is an active sandboxed ufw listening on 25 and 587,
// joined over veth to a client namespace that holds 192.0.2.2-4 and
// 2001:db8::2-3. SSH-style access is not needed: nothing logs in.
func newLinkedFixture(t *testing.T) (*fixture, *sandbox.Netns) {
	t.Helper()
	sandbox.Require(t, "sysctl")
	host := newFixture(t, true)
	client := sandbox.NewNetns(t)
	host.u.Link(client, []string{"192.0.2.1/24", "2001:db8::1/64"},
		[]string{"192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24", "2001:db8::2/64", "2001:db8::3/64"})
	host.u.Listen("[::]:25")
	host.u.Listen("[::]:587")
	return host, client
}

// wantConnect dials to from the client namespace and checks the outcome.
// The timeout bounds a dropped SYN; it is not a measurement.
func wantConnect(t *testing.T, client *sandbox.Netns, from, to string, ok bool) {
	t.Helper()
	err := client.Connect(from, to, 1500*time.Millisecond)
	if ok && err != nil {
		t.Errorf("connect from %s to %s failed: %v", from, to, err)
	}
	if !ok && err == nil {
		t.Errorf("connect from %s to %s succeeded; the firewall should drop it", from, to)
	}
}

func TestApply_badInputLeavesUnownedRulesAlone(t *testing.T) {
	f := newFixture(t, true)
	f.u.WriteFile("/etc/ufw/applications.d/exim", []byte("[Exim]\ntitle=Exim\ndescription=MTA\nports=25/tcp\n"))
	f.u.Run("ufw", "allow", "Exim")
	f.u.Run("ufw", "route", "allow", "proto", "tcp", "from", "10.2.0.0/16", "to", "any", "port", "25")
	f.u.Run("ufw", "allow", "proto", "tcp", "from", "198.51.100.9", "to", "any", "port", "25")
	f.u.WriteFile("/etc/ufw/applications.d/exim", []byte("# removed\n"))
	rules := f.u.ReadFile("/etc/ufw/user.rules")
	odd := strings.Replace(rules, "### tuple ### allow tcp 25 0.0.0.0/0 any 198.51.100.9 in",
		"### tuple ###   allow  tcp 25   0.0.0.0/0 any 198.51.100.9   in", 1)
	f.u.WriteFile("/etc/ufw/user.rules", []byte(odd))
	b := f.backend()

	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, fd := range st.Findings {
		ids[fd.ID] = true
	}
	for _, id := range []string{FindingAppMissing, FindingIgnored} {
		if !ids[id] {
			t.Errorf("no %s finding in %v", id, st.Findings)
		}
	}
	policy := `version: 1
allow:
  - port: smtp
    from: [anywhere]
  - port: smtp
    from: [198.51.100.9]
  - port: submission
    from: [198.51.100.0/24]
targets: [{name: host, type: ufw}]
`
	before := f.unmarked()
	tp := f.planApply(b, policy)
	if len(tp.Changes) != 1 || tp.Changes[0].Rule.Port != 587 {
		t.Errorf("plan %v, want only the 587 add (25 is granted by Exim and by the odd-spaced rule)",
			tp.Changes)
	}
	if d := cmp.Diff(before, f.unmarked()); d != "" {
		t.Errorf("unmarked rules changed (-before +after):\n%s", d)
	}
	f.wantNoChanges(b, policy)

	// A tuple line ufw's own reader would skip: ufw drops such lines when
	// it rewrites the file, so mailfw refuses to write at all.
	withBad := f.u.ReadFile("/etc/ufw/user.rules") +
		"\n### tuple ### frobnicate tcp 25 0.0.0.0/0 any 0.0.0.0/0 in\n"
	f.u.WriteFile("/etc/ufw/user.rules", []byte(withBad))
	p, tgt := f.policy(strings.Replace(policy, "198.51.100.0/24", "198.51.100.128/25", 1))
	tp2, err := plan.PlanTarget(context.Background(), p, tgt, b)
	if err != nil {
		t.Fatal(err)
	}
	done, err := b.Apply(context.Background(), tp2.Changes)
	if err == nil || len(done) != 0 || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("apply over an unreadable line: done %v, err %v; want a refusal", done, err)
	}
	if got := f.u.ReadFile("/etc/ufw/user.rules"); got != withBad {
		t.Error("user.rules changed although apply refused")
	}
}

func TestApply_refusesToOverwriteAnUnmarkedRule(t *testing.T) {
	f := newFixture(t, true)
	f.u.Run("ufw", "allow", "proto", "tcp", "from", "192.0.2.66", "to", "any", "port", "25")
	b := f.backend()
	p, tgt := f.policy(`version: 1
deny:
  - port: smtp
    from: [192.0.2.66]
targets: [{name: host, type: ufw}]
`)
	// The plan refuses first, naming the rule.
	if _, err := plan.PlanTarget(context.Background(), p, tgt, b); err == nil ||
		!strings.Contains(err.Error(), "would overwrite the unmarked rule allow ipv4 tcp/25 from 192.0.2.66/32") {
		t.Fatalf("plan: err = %v, want a refusal naming the unmarked rule", err)
	}
	// The backend refuses too, should such a change reach it anyway.
	caps := b.Capabilities()
	caps.OneRulePerMatch = false
	desired, err := p.Desired(tgt, caps)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tp, err := plan.Diff(desired, st, caps, plan.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := f.u.ReadFile("/etc/ufw/user.rules")
	done, err := b.Apply(context.Background(), tp.Changes)
	if err == nil || len(done) != 0 || !strings.Contains(err.Error(), "unmarked rule with the same match") {
		t.Fatalf("done %v, err %v; want a refusal naming the unmarked rule", done, err)
	}
	if f.u.ReadFile("/etc/ufw/user.rules") != before {
		t.Error("user.rules changed")
	}
}

func TestRead_inactiveAndEnable(t *testing.T) {
	f := newFixture(t, false)
	policy := `version: 1
allow:
  - port: smtp
    from: [anywhere]
targets: [{name: host, type: ufw, enable: true}]
`
	b := f.backend(WithEnable(true))
	p, tgt := f.policy(policy)
	tp, err := plan.PlanTarget(context.Background(), p, tgt, b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tp.Findings, func(x plan.Finding) bool {
		return x.ID == FindingInactive && x.Severity == plan.High
	}) {
		t.Errorf("no high ufw-inactive finding in %v", tp.Findings)
	}
	done, err := b.Apply(context.Background(), tp.Changes)
	if !errors.Is(err, ErrNoSSHAllow) || len(done) != 2 {
		t.Fatalf("apply without an SSH allow: done %d, err %v; want 2 done and ErrNoSSHAllow", len(done), err)
	}
	if out := f.u.Run("ufw", "status"); !strings.Contains(out, "inactive") {
		t.Fatalf("ufw was enabled without an SSH allow:\n%s", out)
	}
	f.u.Run("ufw", "allow", "22/tcp")
	if _, err := b.Apply(context.Background(), nil); err != nil {
		t.Fatalf("apply with an SSH allow: %v", err)
	}
	if out := f.u.Run("ufw", "status"); !strings.Contains(out, "Status: active") {
		t.Errorf("ufw not enabled:\n%s", out)
	}
	f.wantNoChanges(b, policy)
}

func TestRead_ipv6DisabledInDefaults(t *testing.T) {
	f := newFixture(t, true)
	def := f.u.ReadFile("/etc/default/ufw")
	f.u.WriteFile("/etc/default/ufw", []byte(strings.Replace(def, "IPV6=yes", "IPV6=no", 1)))
	b := f.backend()
	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.IPv6 {
		t.Error("State.IPv6 is true with IPV6=no")
	}
	tp := f.planApply(b, `version: 1
allow:
  - port: smtp
    from: [anywhere]
targets: [{name: host, type: ufw}]
`)
	for _, c := range tp.Changes {
		if c.Rule.Family == plan.IPv6 {
			t.Errorf("planned an IPv6 rule with IPv6 disabled: %s", c.Rule)
		}
	}
	if ts := f.tuples("/etc/ufw/user6.rules"); len(ts) != 0 {
		t.Errorf("user6.rules got rules: %v", ts)
	}
}

func TestProbe_sandbox(t *testing.T) {
	f := newFixture(t, false)
	b := f.backend()
	for _, enable := range []bool{false, true} {
		if enable {
			f.u.Run("ufw", "--force", "enable")
		}
		active, detail, err := Probe(context.Background(), b.run)
		if err != nil || active != enable {
			t.Errorf("Probe after enable=%t: %t, %q, %v", enable, active, detail, err)
		}
	}
}

// BenchmarkApply20 applies 20 rules (4 "anywhere" entries, so 8 rules, and
// 12 single sources) through the backend, next to the same rules written
// by one "ufw allow" each, in one sandbox.
func BenchmarkApply20(b *testing.B) {
	f := newFixture(b, true)
	var srcs []string
	for i := 1; i <= 12; i++ {
		srcs = append(srcs, fmt.Sprintf("198.51.100.%d", i))
	}
	policy := fmt.Sprintf(`version: 1
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [anywhere]
  - port: smtps
    from: [anywhere]
  - port: 2525
    from: [anywhere]
  - port: 10025
    from: [%s]
targets: [{name: host, type: ufw}]
`, strings.Join(srcs, ", "))
	be := f.backend()
	pristine4, pristine6 := f.u.ReadFile("/etc/ufw/user.rules"), f.u.ReadFile("/etc/ufw/user6.rules")
	reset := func() {
		f.u.WriteFile("/etc/ufw/user.rules", []byte(pristine4))
		f.u.WriteFile("/etc/ufw/user6.rules", []byte(pristine6))
		f.u.Run("ufw", "reload")
	}

	b.Run("backend", func(b *testing.B) {
		var calls int64
		for b.Loop() {
			start := f.calls.Load()
			tp := f.planApply(be, policy)
			calls += f.calls.Load() - start
			if len(tp.Changes) != 20 {
				b.Fatalf("%d changes, want 20", len(tp.Changes))
			}
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		b.ReportMetric(float64(calls)/float64(b.N), "ufw-calls/op")
	})
	b.Run("ufw-allow-loop", func(b *testing.B) {
		var argvs [][]string
		for _, port := range []string{"25", "587", "465", "2525"} {
			argvs = append(argvs,
				[]string{"ufw", "allow", "proto", "tcp", "from", "0.0.0.0/0", "to", "any", "port", port, "comment", "mailfw"},
				[]string{"ufw", "allow", "proto", "tcp", "from", "::/0", "to", "any", "port", port, "comment", "mailfw"})
		}
		for _, s := range srcs {
			argvs = append(argvs, []string{"ufw", "allow", "proto", "tcp", "from", s, "to", "any", "port", "10025", "comment", "mailfw"})
		}
		for b.Loop() {
			for _, a := range argvs {
				f.u.Run(a...)
			}
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		b.ReportMetric(float64(len(argvs)), "ufw-calls/op")
	})
}

func TestApply_partialFailureSaysWhatWasDoneAndRerunConverges(t *testing.T) {
	f := newFixture(t, true)
	// A wrapper at the exec seam that fails every ufw call naming port 465.
	wrapper := filepath.Join(t.TempDir(), "fail-465")
	script := "#!/bin/sh\nfor a; do [ \"$a\" = 465 ] && { echo 'injected failure' >&2; exit 1; }; done\nexec \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(callCounter{n: f.calls})
	failing := New(WithRoot(f.u.Root), WithLogger(logger),
		WithRunner(execx.New(logger, execx.WithPrefix(append(f.u.Prefix(), wrapper)...))))
	policy := `version: 1
allow:
  - port: smtp
    from: [192.0.2.1]
  - port: submission
    from: [192.0.2.2]
  - port: smtps
    from: [192.0.2.3]
targets: [{name: host, type: ufw}]
`
	p, tgt := f.policy(policy)
	tp, err := plan.PlanTarget(context.Background(), p, tgt, failing)
	if err != nil {
		t.Fatal(err)
	}
	done, err := failing.Apply(context.Background(), tp.Changes)
	if err == nil || len(done) != 1 || done[0].Rule.Port != 25 {
		t.Fatalf("done %v, err %v; want the port 25 add done and an error", done, err)
	}
	for _, s := range []string{"injected failure", "done (1)", "not done (2)", "tcp/587", "tcp/465"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	ts := strings.Join(f.tuples("/etc/ufw/user.rules"), "\n")
	if !strings.Contains(ts, "192.0.2.1") || strings.Contains(ts, "192.0.2.2") {
		t.Errorf("rules after the failure:\n%s", ts)
	}
	b := f.backend()
	tp = f.planApply(b, policy)
	if len(tp.Changes) != 2 {
		t.Errorf("rerun planned %d changes, want the 2 not done", len(tp.Changes))
	}
	f.wantNoChanges(b, policy)
}

// TestBinary_autoPicksActiveUFWAndConverges builds mailfw and runs it inside
// the sandbox: type auto must choose the active ufw, apply must write the
// rules, and a second plan must report no changes (exit 0).
func TestBinary_autoPicksActiveUFWAndConverges(t *testing.T) {
	f := newFixture(t, true)
	sandbox.Require(t, "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailfw")
	build := exec.Command("go", "build", "-o", bin, "github.com/mailfw/mailfw/cmd/mailfw")
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building mailfw: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "mailfw.yaml")
	policy := `version: 1
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [203.0.113.0/24]
    description: office
targets: [{name: host, type: auto}]
`
	if err := os.WriteFile(cfg, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := f.u.TryRun(bin, "apply", "-c", cfg, "--auto-approve"); err != nil {
		t.Fatalf("mailfw apply: %v\n%s", err, out)
	}
	ts := strings.Join(f.tuples("/etc/ufw/user.rules"), "\n")
	if !strings.Contains(ts, "allow tcp 587 0.0.0.0/0 any 203.0.113.0/24 in comment=") {
		t.Errorf("user.rules after mailfw apply:\n%s", ts)
	}
	out, err := f.u.TryRun(bin, "plan", "-c", cfg, "--detailed-exitcode")
	t.Logf("mailfw plan:\n%s", out)
	if err != nil {
		t.Errorf("second mailfw plan: %v (want exit 0, no changes)\n%s", err, out)
	}
}

func TestApply_exclusiveRemovesOnlyPlainUnmarkedMailAllows(t *testing.T) {
	f := newFixture(t, true)
	f.u.Run("ufw", "allow", "22/tcp")
	f.u.Run("ufw", "allow", "587/tcp")
	f.u.Run("ufw", "allow", "Postfix SMTPS")
	f.u.Run("ufw", "allow", "proto", "tcp", "from", "198.51.100.0/24", "to", "any", "port", "25",
		"comment", "added by hand")
	f.u.Run("ufw", "allow", "25,465,587/tcp")
	f.u.Run("ufw", "insert", "1", "reject", "from", "192.0.2.4", "comment", "by Fail2Ban after 5 attempts")
	b := f.backend()
	policy := `version: 1
allow:
  - port: smtp
    from: [anywhere]
ownership: exclusive
targets: [{name: host, type: ufw}]
`
	tp := f.planApply(b, policy)
	var removed []string
	for _, c := range tp.Changes {
		if c.Action == plan.Remove {
			removed = append(removed, c.ID)
		}
	}
	slices.Sort(removed)
	want := []string{
		"allow tcp 25 0.0.0.0/0 any 198.51.100.0/24 in",
		"allow tcp 465 0.0.0.0/0 any 0.0.0.0/0 Postfix%20SMTPS - in",
		"allow tcp 465 ::/0 any ::/0 Postfix%20SMTPS - in",
		"allow tcp 587 0.0.0.0/0 any 0.0.0.0/0 in",
		"allow tcp 587 ::/0 any ::/0 in",
	}
	if d := cmp.Diff(want, removed); d != "" {
		t.Errorf("removed (-want +got):\n%s", d)
	}
	got := strings.Join(f.unmarked(), "\n")
	for _, keep := range []string{"allow tcp 22 0.0.0.0/0", "allow tcp 22 ::/0", "25,465,587", "192.0.2.4"} {
		if !strings.Contains(got, keep) {
			t.Errorf("%q was removed; left:\n%s", keep, got)
		}
	}
	for _, gone := range []string{"allow tcp 587 0.0.0.0/0 any 0.0.0.0/0 in", "Postfix%20SMTPS", "198.51.100.0/24"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q is still there:\n%s", gone, got)
		}
	}
	f.wantNoChanges(b, policy)
}
