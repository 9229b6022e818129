package firewalld

import (
	"context"
	"fmt"
	"github.com/mailfw/mailfw/internal/golden"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
)

var target = plan.Target{Name: "host", Type: "firewalld"}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newTestBackend starts a private firewalld and a backend that reaches it.
func newTestBackend(t testing.TB) (*sandbox.Firewalld, *Backend) {
	t.Helper()
	fw := sandbox.NewFirewalld(t, sandbox.NewNetns(t))
	log := testLogger(t)
	run := execx.New(log, execx.WithPrefix(fw.Prefix()...))
	return fw, New(WithRunner(run), WithLogger(log))
}

func mustPolicy(t testing.TB, yaml string) *plan.Policy {
	t.Helper()
	p, err := plan.ParsePolicy("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parsing policy: %v", err)
	}
	return p
}

// planApply plans p against b, applies it, and checks that every change
// was done.
func planApply(t testing.TB, b *Backend, p *plan.Policy) plan.TargetPlan {
	t.Helper()
	ctx := context.Background()
	tp, err := plan.PlanTarget(ctx, p, target, b)
	if err != nil {
		t.Fatalf("planning: %v", err)
	}
	done, err := b.Apply(ctx, tp.Changes)
	if err != nil {
		t.Fatalf("applying: %v", err)
	}
	if len(done) != len(tp.Changes) {
		t.Fatalf("applied %d of %d changes", len(done), len(tp.Changes))
	}
	return tp
}

func requireNoChanges(t testing.TB, b *Backend, p *plan.Policy) plan.TargetPlan {
	t.Helper()
	tp, err := plan.PlanTarget(context.Background(), p, target, b)
	if err != nil {
		t.Fatalf("planning again: %v", err)
	}
	if len(tp.Changes) != 0 {
		t.Fatalf("second plan has changes: %+v", tp.Changes)
	}
	return tp
}

// listing is the normalised --info-policy listing of the mailfw policies in
// one configuration: rich rules sorted, since firewalld keeps them in a set.
func listing(t testing.TB, fw *sandbox.Firewalld, permanent bool) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{DenyPolicy, AllowPolicy} {
		args := []string{"--info-policy=" + p}
		if permanent {
			args = append([]string{"--permanent"}, args...)
		}
		bs, err := parseBlocks(fw.Cmd(args...))
		if err != nil || len(bs) != 1 {
			t.Fatalf("parsing --info-policy=%s: %v", p, err)
		}
		blk := bs[0]
		fmt.Fprintln(&b, blk.Name)
		var keys []string
		for k := range blk.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vals := append([]string(nil), blk.Fields[k]...)
			if k == "rich rules" {
				sort.Strings(vals)
				fmt.Fprintf(&b, "  %s:\n", k)
				for _, v := range vals {
					fmt.Fprintf(&b, "\t%s\n", v)
				}
				continue
			}
			fmt.Fprintf(&b, "  %s: %s\n", k, strings.Join(vals, " "))
		}
	}
	return b.String()
}

func zoneListing(t testing.TB, fw *sandbox.Firewalld, zone string, permanent bool) *block {
	t.Helper()
	args := []string{"--zone=" + zone, "--list-all"}
	if permanent {
		args = append([]string{"--permanent"}, args...)
	}
	bs, err := parseBlocks(fw.Cmd(args...))
	if err != nil || len(bs) != 1 {
		t.Fatalf("parsing zone %s: %v", zone, err)
	}
	return bs[0]
}

func hasFinding(tp plan.TargetPlan, id string) bool {
	for _, f := range tp.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

const mxPolicy = `version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
  relays: [198.51.100.10, 198.51.100.11]
  blocklist: [192.0.2.66, "2001:db8:66::/64"]
allow:
  - port: smtp
    from: [anywhere]
    description: inbound mail
  - port: submission
    from: [office]
    description: 'office "clients" ; $(rm -rf /) – Zürich'
  - port: smtps
    from: [office, relays]
    limit: {connections_per_source: 10}
deny:
  - port: smtp
    from: [blocklist]
targets:
  - name: host
    type: firewalld
`

func TestApply_emptyFirewallMatchesGolden(t *testing.T) {
	fw, b := newTestBackend(t)
	p := mustPolicy(t, mxPolicy)

	first, err := plan.PlanTarget(context.Background(), p, target, b)
	if err != nil {
		t.Fatal(err)
	}
	if !hasFinding(first, FindingReloadNeeded) {
		t.Errorf("first plan does not say that the apply will reload: %+v", first.Findings)
	}
	if !hasFinding(first, plan.FindingLimitUnenforced) {
		t.Errorf("the smtps limit is not reported as unenforced: %+v", first.Findings)
	}
	planApply(t, b, p)
	if notes := strings.Join(b.Notes(), "\n"); !strings.Contains(notes, "reloaded firewalld once") {
		t.Errorf("notes do not report the reload: %q", notes)
	}

	rt, perm := listing(t, fw, false), listing(t, fw, true)
	if rt != perm {
		t.Errorf("runtime and permanent differ after apply:\nruntime:\n%s\npermanent:\n%s", rt, perm)
	}
	golden.Check(t, "apply-empty.golden", rt)
	second := requireNoChanges(t, b, p)
	if hasFinding(second, FindingRuntimePermanent) || hasFinding(second, FindingReloadNeeded) {
		t.Errorf("second plan has firewalld findings: %+v", second.Findings)
	}
}

func TestPlan_zoneServiceSatisfiesSMTPAndUnmarkedRulesStay(t *testing.T) {
	fw, b := newTestBackend(t)
	for _, perm := range [][]string{nil, {"--permanent"}} {
		fw.Cmd(append(perm, "--zone=public", "--add-service=smtp")...)
		fw.Cmd(append(perm, "--zone=public", "--add-port=2525/tcp")...)
		fw.Cmd(append(perm, "--zone=public",
			`--add-rich-rule=rule family="ipv4" source address="198.51.100.0/24" port port="587" protocol="tcp" accept`)...)
	}
	before := zoneListing(t, fw, "public", false)
	p := mustPolicy(t, mxPolicy)
	tp := planApply(t, b, p)
	for _, c := range tp.Changes {
		if c.Rule.Port == 25 && c.Rule.Verdict == plan.Allow {
			t.Errorf("plan adds %s although zone public has service smtp", c.Rule)
		}
	}
	var bySMTP int
	for _, s := range tp.Satisfied {
		if s.Rule.Port == 25 && s.By.Origin == "zone public service smtp" {
			bySMTP++
		}
	}
	if bySMTP != 2 {
		t.Errorf("service smtp satisfies %d rules, want 2 (one per family): %+v", bySMTP, tp.Satisfied)
	}
	requireNoChanges(t, b, p)

	// Dropping the submission entry removes exactly its two owned rules.
	smaller := mustPolicy(t, strings.Replace(mxPolicy, `  - port: submission
    from: [office]
    description: 'office "clients" ; $(rm -rf /) – Zürich'
`, "", 1))
	tp = planApply(t, b, smaller)
	var removed []string
	for _, c := range tp.Changes {
		if c.Action != plan.Remove {
			t.Errorf("unexpected change %s %s", c.Action, c.Rule)
			continue
		}
		removed = append(removed, c.Rule.String())
	}
	sort.Strings(removed)
	want := []string{"allow ipv4 tcp/587 from 203.0.113.0/24", "allow ipv6 tcp/587 from 2001:db8:10::/48"}
	if strings.Join(removed, "|") != strings.Join(want, "|") {
		t.Errorf("removed %q, want %q", removed, want)
	}
	requireNoChanges(t, b, smaller)
	for _, perm := range []bool{false, true} {
		after := zoneListing(t, fw, "public", perm)
		for _, k := range []string{"services", "ports", "rich rules"} {
			if strings.Join(after.Fields[k], " ") != strings.Join(before.Fields[k], " ") {
				t.Errorf("zone public %s changed (permanent=%t): %q -> %q",
					k, perm, before.Fields[k], after.Fields[k])
			}
		}
	}
}

func TestApply_handEditedPolicyIsAFindingAndStays(t *testing.T) {
	fw, b := newTestBackend(t)
	p := mustPolicy(t, mxPolicy)
	planApply(t, b, p)
	odd := []string{
		`--add-rich-rule=rule family="ipv4" port port="2000-2100" protocol="tcp" accept`,
		`--add-rich-rule=rule family="ipv4" source address="192.0.2.7" port port="25" protocol="tcp" log prefix="x" accept`,
	}
	for _, perm := range [][]string{nil, {"--permanent"}} {
		fw.Cmd(append(append(perm, "--policy="+AllowPolicy), odd...)...)
		fw.Cmd(append(perm, "--policy="+AllowPolicy, "--add-port=8080/tcp")...)
	}
	tp, err := plan.PlanTarget(context.Background(), p, target, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Changes) != 0 {
		t.Errorf("hand-edited rules lead to changes: %+v", tp.Changes)
	}
	var n int
	for _, f := range tp.Findings {
		if f.ID == FindingForeignRule {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d %s findings, want 3: %+v", n, FindingForeignRule, tp.Findings)
	}
	// A later apply leaves them alone.
	planApply(t, b, mustPolicy(t, strings.Replace(mxPolicy, "from: [office, relays]", "from: [relays]", 1)))
	rules := fw.Cmd("--policy="+AllowPolicy, "--list-rich-rules")
	for _, o := range odd {
		if !strings.Contains(rules, strings.TrimPrefix(o, "--add-rich-rule=")) {
			t.Errorf("hand-added rule was removed: %s", o)
		}
	}
}

func TestRead_runtimeOnlyMailPortAndSourceZoneAreFindings(t *testing.T) {
	fw, b := newTestBackend(t)
	fw.Cmd("--permanent", "--new-zone=backoffice")
	fw.Cmd("--permanent", "--zone=backoffice", "--add-source=198.18.0.0/15")
	fw.Cmd("--reload")
	fw.Cmd("--zone=public", "--add-port=587/tcp")
	fw.Cmd("--zone=public", "--add-port=8080/tcp")
	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, f := range st.Findings {
		if f.ID == FindingRuntimePermanent {
			msgs = append(msgs, f.Message)
		}
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "587/tcp") || strings.Contains(msgs[0], "8080") {
		t.Errorf("runtime/permanent findings = %q, want one naming 587/tcp only", msgs)
	}
	var zoneFinding bool
	for _, f := range st.Findings {
		zoneFinding = zoneFinding || (f.ID == FindingSourceZone && strings.Contains(f.Message, "backoffice"))
	}
	if !zoneFinding {
		t.Errorf("no %s finding for zone backoffice: %+v", FindingSourceZone, st.Findings)
	}
	// The public zone's runtime port no longer counts for the backoffice
	// sources: the zone bound to them is evaluated instead.
	for _, r := range st.Scopes[0].Rules {
		if r.Origin == "zone public port 587/tcp" && r.Family == plan.IPv4 && !r.Conditional {
			t.Errorf("%s is unconditional although zone backoffice takes part of its sources", r)
		}
	}
}

func TestProbe_runningDaemon(t *testing.T) {
	fw := sandbox.NewFirewalld(t, sandbox.NewNetns(t))
	run := execx.New(testLogger(t), execx.WithPrefix(fw.Prefix()...))
	active, detail, err := Probe(context.Background(), run)
	if err != nil || !active {
		t.Errorf("Probe = %t, %q, %v; want active", active, detail, err)
	}
	// A namespace without the daemon: firewall-cmd finds no bus.
	n := sandbox.NewNetns(t)
	run = execx.New(testLogger(t), execx.WithPrefix("nsenter", "--net=/run/netns/"+n.Name,
		"--", "env", "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/bus"))
	active, detail, err = Probe(context.Background(), run)
	if err != nil || active {
		t.Errorf("Probe without a daemon = %t, %q, %v; want inactive", active, detail, err)
	}
}

// connectOK dials the host from the client and fails the test when the
// outcome is not the one wanted.
func connectOK(t *testing.T, client *sandbox.Netns, from, to string, want bool) {
	t.Helper()
	err := client.Connect(from, to, 2*time.Second)
	if want && err != nil {
		t.Errorf("connect from %s to %s failed: %v", from, to, err)
	}
	if !want && err == nil {
		t.Errorf("connect from %s to %s succeeded; it must be refused", from, to)
	}
}

// hostAndClient gives a firewalld host and a client namespace joined by a
// veth pair; the client has an allowed and a denied address per family.
func hostAndClient(t *testing.T) (*sandbox.Firewalld, *Backend, *sandbox.Netns) {
	fw, b := newTestBackend(t)
	client := sandbox.NewNetns(t)
	fw.Net.Link(client, []string{"192.0.2.1/24", "2001:db8:1::1/64"},
		[]string{"192.0.2.10/24", "192.0.2.66/24", "2001:db8:1::10/64", "2001:db8:1::66/64"})
	fw.Net.Listen("[::]:25")
	return fw, b, client
}

const packetPolicy = `version: 1
sources:
  banned: [192.0.2.66, "2001:db8:1::66"]
allow:
  - port: smtp
    from: [anywhere]
deny:
  - port: smtp
    from: [banned]
targets:
  - name: host
    type: firewalld
`

func TestPackets_allowOpensAndDenyBeatsZoneServiceInBothFamilies(t *testing.T) {
	fw, b, client := hostAndClient(t)
	// firewalld's default zone rejects port 25 until something opens it.
	connectOK(t, client, "192.0.2.10", "192.0.2.1:25", false)
	connectOK(t, client, "2001:db8:1::10", "[2001:db8:1::1]:25", false)

	p := mustPolicy(t, packetPolicy)
	planApply(t, b, p)
	connectOK(t, client, "192.0.2.10", "192.0.2.1:25", true)
	connectOK(t, client, "2001:db8:1::10", "[2001:db8:1::1]:25", true)
	connectOK(t, client, "192.0.2.66", "192.0.2.1:25", false)
	connectOK(t, client, "2001:db8:1::66", "[2001:db8:1::1]:25", false)

	// A zone service evaluated between mailfw's two policies: the deny,
	// evaluated first, still wins for both families.
	for _, perm := range [][]string{nil, {"--permanent"}} {
		fw.Cmd(append(perm, "--zone=public", "--add-service=smtp")...)
	}
	requireNoChanges(t, b, p)
	connectOK(t, client, "192.0.2.10", "192.0.2.1:25", true)
	connectOK(t, client, "2001:db8:1::10", "[2001:db8:1::1]:25", true)
	connectOK(t, client, "192.0.2.66", "192.0.2.1:25", false)
	connectOK(t, client, "2001:db8:1::66", "[2001:db8:1::1]:25", false)
}

// A fail2ban-style ban is a runtime-only rich rule in zone public. The first
// apply creates the policies and reloads; the ban must survive it, and
// mailfw's allow, evaluated after the zones, must not let the address in.
func TestApply_fail2banRuntimeBanSurvivesFirstApplyAndReload(t *testing.T) {
	fw, b, client := hostAndClient(t)
	ban4 := `rule family="ipv4" source address="192.0.2.66" reject type="icmp-port-unreachable"`
	ban6 := `rule family="ipv6" source address="2001:db8:1::66" reject type="icmp6-port-unreachable"`
	fw.Cmd("--permanent", "--new-ipset=banned", "--type=hash:ip")
	fw.Cmd("--reload")
	fw.Cmd("--zone=public", "--add-rich-rule="+ban4, "--add-rich-rule="+ban6)
	fw.Cmd("--zone=public", "--add-port=8025/tcp") // an operator's runtime-only port
	fw.Cmd("--ipset=banned", "--add-entry=192.0.2.77", "--add-entry=192.0.2.78")
	fw.Cmd("--permanent", "--zone=public", "--add-port=9025/tcp")
	fw.Cmd("--permanent", "--zone=public", "--remove-service=ssh") // pending, not yet in force

	p := mustPolicy(t, `version: 1
allow:
  - port: smtp
    from: [anywhere]
targets:
  - name: host
    type: firewalld
`)
	planApply(t, b, p)
	notes := strings.Join(b.Notes(), "\n")
	for _, want := range []string{"reloaded firewalld once", "kept 6 runtime-only entries in force", ban4,
		"ipset banned entry 192.0.2.77", "port 8025/tcp", "service ssh", "took out again", "port 9025/tcp"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	pub := zoneListing(t, fw, "public", false)
	for _, r := range []string{ban4, ban6} {
		if !contains(pub.Fields["rich rules"], r) {
			t.Errorf("runtime ban lost across the reload: %s", r)
		}
	}
	if !contains(pub.Fields["ports"], "8025/tcp") || contains(pub.Fields["ports"], "9025/tcp") {
		t.Errorf("runtime ports after apply = %q, want 8025/tcp and not 9025/tcp", pub.Fields["ports"])
	}
	// The permanent configuration is as the operator left it: no bans, the
	// pending port and the pending removal of ssh.
	perm := zoneListing(t, fw, "public", true)
	if contains(perm.Fields["rich rules"], ban4) || contains(perm.Fields["ports"], "8025/tcp") ||
		!contains(perm.Fields["ports"], "9025/tcp") || contains(perm.Fields["services"], "ssh") {
		t.Errorf("permanent zone public after apply: %+v", perm.Fields)
	}
	if got := fw.Cmd("--permanent", "--ipset=banned", "--get-entries"); strings.TrimSpace(got) != "" {
		t.Errorf("permanent ipset entries after apply = %q, want none", got)
	}
	if got := strings.Fields(fw.Cmd("--ipset=banned", "--get-entries")); len(got) != 2 {
		t.Errorf("runtime ipset entries after the reload = %q, want both", got)
	}
	if !contains(pub.Fields["services"], "ssh") {
		t.Errorf("the reload brought a pending permanent removal into force: services %q", pub.Fields["services"])
	}
	connectOK(t, client, "192.0.2.10", "192.0.2.1:25", true)
	connectOK(t, client, "2001:db8:1::10", "[2001:db8:1::1]:25", true)
	connectOK(t, client, "192.0.2.66", "192.0.2.1:25", false)
	connectOK(t, client, "2001:db8:1::66", "[2001:db8:1::1]:25", false)

	// Later applies never reload: a runtime-only item added now survives.
	fw.Cmd("--zone=public", "--add-port=7025/tcp")
	planApply(t, b, mustPolicy(t, packetPolicy))
	if notes := b.Notes(); len(notes) != 0 {
		t.Errorf("second apply left notes (reloaded?): %q", notes)
	}
	pub = zoneListing(t, fw, "public", false)
	if !contains(pub.Fields["ports"], "7025/tcp") || !contains(pub.Fields["rich rules"], ban4) {
		t.Errorf("second apply dropped runtime-only entries: %+v", pub.Fields)
	}
}

func TestApply_refusesFirstApplyOverRuntimeDirectRules(t *testing.T) {
	fw, b := newTestBackend(t)
	fw.Cmd("--direct", "--add-chain", "ipv4", "filter", "f2b-postfix")
	tp, err := plan.PlanTarget(context.Background(), mustPolicy(t, packetPolicy), target, b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Apply(context.Background(), tp.Changes)
	if err == nil || !strings.Contains(err.Error(), "nothing changed") {
		t.Fatalf("Apply = %v, want a refusal that changed nothing", err)
	}
	if out, _ := fw.TryCmd("--permanent", "--get-policies"); strings.Contains(out, "mailfw") {
		t.Errorf("a refused apply created policies: %q", out)
	}
}

// An apply that failed half-way, or a hand edit, leaves an owned rule in one
// configuration only; the next apply brings both back in step.
func TestApply_convergesFromRulesInOneConfigurationOnly(t *testing.T) {
	fw, b := newTestBackend(t)
	p := mustPolicy(t, packetPolicy)
	planApply(t, b, p)
	wanted := `rule family="ipv6" port port="25" protocol="tcp" accept`
	stray := `rule family="ipv4" source address="198.51.100.9/32" port port="25" protocol="tcp" accept`
	fw.Cmd("--permanent", "--policy="+AllowPolicy, "--remove-rich-rule="+wanted)
	fw.Cmd("--permanent", "--policy="+AllowPolicy, "--add-rich-rule="+stray)

	tp, err := plan.PlanTarget(context.Background(), p, target, b)
	if err != nil {
		t.Fatal(err)
	}
	if !hasFinding(tp, FindingRuntimePermanent) {
		t.Errorf("no %s finding for the half-applied rules: %+v", FindingRuntimePermanent, tp.Findings)
	}
	done, err := b.Apply(context.Background(), tp.Changes)
	if err != nil || len(done) != len(tp.Changes) {
		t.Fatalf("Apply = %d of %d, %v", len(done), len(tp.Changes), err)
	}
	requireNoChanges(t, b, p)
	if rt, perm := listing(t, fw, false), listing(t, fw, true); rt != perm {
		t.Errorf("runtime and permanent still differ:\nruntime:\n%s\npermanent:\n%s", rt, perm)
	}
	if rules := fw.Cmd("--permanent", "--policy="+AllowPolicy, "--list-rich-rules"); !strings.Contains(rules, wanted) || strings.Contains(rules, stray) {
		t.Errorf("permanent mailfw-allow after the repair:\n%s", rules)
	}
}

// A batch item firewall-cmd reports with a warning (the rule was added by
// someone else between plan and apply) makes the apply read back and count
// what really holds; a batch without warnings is taken at its word.
func TestApply_warnedBatchIsReadBackAndCounted(t *testing.T) {
	fw, b := newTestBackend(t)
	p := mustPolicy(t, packetPolicy)
	planApply(t, b, p) // creates the policies
	more := mustPolicy(t, strings.Replace(packetPolicy, "  - port: smtp\n    from: [anywhere]\n",
		"  - port: smtp\n    from: [anywhere]\n  - port: submission\n    from: [198.51.100.0/24]\n", 1))
	tp, err := plan.PlanTarget(context.Background(), more, target, b)
	if err != nil || len(tp.Changes) != 1 {
		t.Fatalf("plan = %+v, %v; want one add", tp.Changes, err)
	}
	// Someone else adds the very rule, in both configurations.
	rule := `rule family="ipv4" source address="198.51.100.0/24" port port="587" protocol="tcp" accept`
	fw.Cmd("--policy="+AllowPolicy, "--add-rich-rule="+rule)
	fw.Cmd("--permanent", "--policy="+AllowPolicy, "--add-rich-rule="+rule)
	calls := b.run.Calls()
	done, err := b.Apply(context.Background(), tp.Changes)
	if err != nil || len(done) != 1 {
		t.Fatalf("Apply = %d done, %v; want the add counted as done", len(done), err)
	}
	if n := b.run.Calls() - calls; n != 4 {
		t.Errorf("a warned apply made %d calls, want 4 (2 writes, 2 read-backs)", n)
	}
	requireNoChanges(t, b, more)

	// Back to the first policy, then the same add again as a clean batch:
	// two calls, no read-back.
	planApply(t, b, p)
	tp, err = plan.PlanTarget(context.Background(), more, target, b)
	if err != nil {
		t.Fatal(err)
	}
	calls = b.run.Calls()
	if _, err := b.Apply(context.Background(), tp.Changes); err != nil {
		t.Fatal(err)
	}
	if n := b.run.Calls() - calls; n != 2 {
		t.Errorf("a clean apply made %d calls, want 2", n)
	}
	requireNoChanges(t, b, more)
}
