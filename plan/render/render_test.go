package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/golden"
	"github.com/mailfw/mailfw/plan"
)

// samplePlan is a plan with every kind of change, an already granted rule
// and findings, diffed from a policy and a state the way a run makes it.
func samplePlan(t *testing.T) *plan.File {
	t.Helper()
	pol, err := plan.ParsePolicy("mailfw.yaml", []byte(`version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [office]
    description: office clients
deny:
  - port: smtp
    from: [192.0.2.66]
targets:
  - name: host
    type: iptables
`))
	if err != nil {
		t.Fatal(err)
	}
	caps := plan.Capabilities{Deny: true, Limit: true, IPv6: true}
	desired, err := pol.Desired(pol.Targets[0], caps)
	if err != nil {
		t.Fatal(err)
	}
	st := &plan.State{Kind: "iptables (nf_tables)", IPv6: true, Scopes: []plan.Scope{{ID: "INPUT", AllowOrder: 20, DenyOrder: 20,
		Rules: []plan.Observed{
			{ID: "a", Family: plan.IPv4, Protocol: "tcp", PortFrom: 25, PortTo: 25, Source: "0.0.0.0/0", Verdict: plan.Allow, Order: 10, Origin: "INPUT"},
			{ID: "b", Family: plan.IPv4, Protocol: "tcp", PortFrom: 465, PortTo: 465, Source: "0.0.0.0/0", Verdict: plan.Allow, Order: 11, Origin: "INPUT"},
			{ID: "c", Family: plan.IPv4, Protocol: "tcp", PortFrom: 587, PortTo: 587, Source: "203.0.113.0/24", Verdict: plan.Allow, Owned: true, Description: "old", Order: 21},
			{ID: "d", Family: plan.IPv6, Protocol: "tcp", PortFrom: 587, PortTo: 587, Source: "2001:db8:99::/48", Verdict: plan.Allow, Owned: true, Order: 22},
		}}}}
	tp, err := plan.Diff(desired, st, caps, plan.DiffOptions{Ownership: pol.Ownership})
	if err != nil {
		t.Fatal(err)
	}
	tp.Name, tp.Type = "host", "iptables"
	return plan.NewFile(pol, []plan.TargetPlan{tp})
}

func TestHuman_plan(t *testing.T) {
	var b bytes.Buffer
	Human{W: &b}.Plan(samplePlan(t))
	golden.Check(t, "plan.golden", b.String())
	if bytes.Contains(b.Bytes(), []byte("\x1b[")) {
		t.Error("colour codes in output rendered without colour")
	}
}

func TestHuman_colourOnlyWhenAsked(t *testing.T) {
	var b bytes.Buffer
	Human{W: &b, Color: true}.Plan(samplePlan(t))
	if !bytes.Contains(b.Bytes(), []byte("\x1b[32m+")) {
		t.Errorf("no green + in coloured output:\n%s", b.String())
	}
}

func TestHuman_noChanges(t *testing.T) {
	var b bytes.Buffer
	Human{W: &b}.Plan(plan.NewFile(plan.DefaultPolicy(), []plan.TargetPlan{{Name: "host", Type: "auto", Kind: "iptables (nf_tables)"}}))
	golden.Check(t, "no-changes.golden", b.String())
}

func TestJSON_plan(t *testing.T) {
	var b bytes.Buffer
	if err := Plan(&b, samplePlan(t)); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "plan.json", b.String())
}

func TestAuditFormats(t *testing.T) {
	var b bytes.Buffer
	if err := SARIF(&b, samplePlan(t), "test"); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "audit.sarif", b.String())
	b.Reset()
	Markdown(&b, samplePlan(t))
	golden.Check(t, "audit.md", b.String())
	b.Reset()
	Human{W: &b}.Audit(samplePlan(t))
	golden.Check(t, "audit.golden", b.String())
}

func TestHuman_namesScopesOnlyWhereThereIsAChoice(t *testing.T) {
	add := func(scope string) plan.Change {
		return plan.Change{Action: plan.Add, Reason: plan.ReasonMissing, Scope: scope,
			Rule: plan.Rule{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "0.0.0.0/0", Verdict: plan.Allow}}
	}
	render := func(tp plan.TargetPlan) string {
		var b bytes.Buffer
		Human{W: &b}.Plan(plan.NewFile(plan.DefaultPolicy(), []plan.TargetPlan{tp}))
		return b.String()
	}
	host := render(plan.TargetPlan{Name: "host", Type: "ufw", Kind: "ufw", Changes: []plan.Change{add("ufw")},
		Findings: []plan.Finding{{ID: "x", Severity: plan.Info, Message: "m", Scope: "ufw"}}})
	if strings.Contains(host, "\n  ufw\n") || strings.Contains(host, "[ufw]") {
		t.Errorf("a host firewall's one scope is named:\n%s", host)
	}
	cloud := render(plan.TargetPlan{Name: "prod", Type: "aws", Changes: []plan.Change{add("sg-1 (us-east-1)")}})
	if !strings.Contains(cloud, "\n  sg-1 (us-east-1)\n    + allow") {
		t.Errorf("a security group is not named:\n%s", cloud)
	}
}
