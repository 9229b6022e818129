package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff_quotaIsCheckedBeforeAnyWrite(t *testing.T) {
	desired := []Rule{rule("allow ipv4 tcp 25 198.51.100.1/32"), rule("allow ipv4 tcp 25 198.51.100.2/32")}
	tests := []struct {
		name     string
		used     int
		wantErr  string
		wantFind []string
	}{
		{"room-left", 2, "", []string{}},
		{"near-the-quota", 6, "", []string{"medium quota-near"}},
		{"over-the-quota", 9, "needs 11 IPv4 rules, and the quota is 10", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &State{IPv6: true, Scopes: []Scope{{ID: "sg-1", Quota: 10, QuotaUsed: map[Family]int{IPv4: tc.used}}}}
			tp, err := Diff(desired, st, Capabilities{IPv6: true}, DiffOptions{MailPorts: []int{}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantFind, findingIDs(tp.Findings)); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
		})
	}
}

func TestDiff_quotaCountsThePeakAndSharedQuotas(t *testing.T) {
	// Two adds and two removals: the end state fits, the peak does not.
	st := &State{IPv6: true, Scopes: []Scope{{ID: "sg-1", Quota: 10, QuotaUsed: map[Family]int{IPv4: 9},
		Rules: []Observed{obs("allow ipv4 tcp 25 198.51.100.9/32", owned("")), obs("allow ipv4 tcp 25 198.51.100.8/32", owned(""))}}}}
	desired := []Rule{rule("allow ipv4 tcp 25 198.51.100.1/32"), rule("allow ipv4 tcp 25 198.51.100.2/32")}
	if _, err := Diff(desired, st, Capabilities{IPv6: true}, DiffOptions{MailPorts: []int{}}); err == nil ||
		!strings.Contains(err.Error(), "needs 11 IPv4 rules") {
		t.Errorf("err = %v, want the peak of 11 refused", err)
	}
	shared := &State{IPv6: true, Scopes: []Scope{{ID: "sg-2", Quota: 200, QuotaShared: true,
		QuotaUsed: map[Family]int{IPv4: 199, IPv6: 0}}}}
	both := []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0"), rule("allow ipv6 tcp 25 ::/0")}
	if _, err := Diff(both, shared, Capabilities{IPv6: true}, DiffOptions{MailPorts: []int{}}); err == nil ||
		!strings.Contains(err.Error(), "needs 201 rules, and the quota is 200") {
		t.Errorf("err = %v, want the shared count of 201 refused", err)
	}
}

func TestStateDigest_leavesVolatileRulesOut(t *testing.T) {
	base := &State{Scopes: []Scope{{ID: "INPUT", Rules: []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0")}}}}
	banned := &State{Scopes: []Scope{{ID: "INPUT", Rules: []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0"),
		obs("deny ipv4 all 1-65535 192.0.2.7/32", func(o *Observed) { o.Volatile = true })}}}}
	if base.Digest() != banned.Digest() {
		t.Error("a new fail2ban ban changed the digest")
	}
}

func TestDiff_shadowedAllowIsAnErrorWhereTheBackendSaysSo(t *testing.T) {
	st := &State{IPv6: true, Scopes: []Scope{{ID: "sg-1", AllowOrder: 3, DenyOrder: 2,
		Rules: []Observed{obs("deny ipv4 tcp 25 198.51.100.0/24", order(2))}}}}
	desired := []Rule{rule("allow ipv4 tcp 25 198.51.100.7/32")}
	_, err := Diff(desired, st, Capabilities{Deny: true, IPv6: true, ShadowedAllowIsError: true}, DiffOptions{})
	if err == nil || !strings.Contains(err.Error(), "would be dead") || !strings.Contains(err.Error(), "198.51.100.0/24") {
		t.Fatalf("err = %v, want a dead-allow error naming the shadowing rule", err)
	}
	tp, err := Diff(desired, st, Capabilities{Deny: true, IPv6: true}, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"high dead-allow"}, findingIDs(tp.Findings)); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}

func TestDiff_fitsThePolicyToTheTarget(t *testing.T) {
	limited := rule("allow ipv4 tcp 465 203.0.113.0/24")
	limited.Limit = &Limit{ConnectionsPerSource: 10}
	desired := []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0"), rule("allow ipv6 tcp 25 ::/0"), limited}
	st := &State{IPv6: false, Scopes: []Scope{{ID: "host"}}}
	tp, err := Diff(desired, st, Capabilities{IPv6: true}, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)",
		"+ allow ipv4 tcp/465 from 203.0.113.0/24 (missing)",
	}
	if d := cmp.Diff(want, changeLines(tp.Changes)); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"medium ipv6-unfiltered", "low limit-unenforced"}, findingIDs(tp.Findings)); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}

func TestDiff_everyScopeGetsTheDesiredRules(t *testing.T) {
	st := &State{IPv6: true, Scopes: []Scope{
		{ID: "sg-b", Rules: []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0", owned(""))}},
		{ID: "sg-a"},
	}}
	tp, err := Diff([]Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")}, st, Capabilities{}, DiffOptions{MailPorts: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Changes) != 1 || tp.Changes[0].Scope != "sg-a" {
		t.Fatalf("changes = %+v, want one add to sg-a", tp.Changes)
	}
}

func TestStateDigest_ignoresListingOrderButNotRuleOrder(t *testing.T) {
	a := obs("allow ipv4 tcp 25 0.0.0.0/0", order(1))
	b := obs("deny ipv4 tcp 25 192.0.2.1/32", order(2))
	s1 := &State{Scopes: []Scope{{ID: "INPUT", Rules: []Observed{a, b}}}}
	s2 := &State{Scopes: []Scope{{ID: "INPUT", Rules: []Observed{b, a}}}}
	if s1.Digest() != s2.Digest() {
		t.Error("the same rules listed in another order give another digest")
	}
	a.Order, b.Order = 2, 1
	s3 := &State{Scopes: []Scope{{ID: "INPUT", Rules: []Observed{a, b}}}}
	if s1.Digest() == s3.Digest() {
		t.Error("swapping the evaluation order of two rules left the digest unchanged")
	}
}

func TestDesired(t *testing.T) {
	pol := mustParse(t, `version: 1
sources:
  office: [203.0.113.9/24, "2001:DB8:10:0::/48"]
  partners: [pl-0123456789abcdef0]
allow:
  - port: smtp
    from: [anywhere]
  - port: submissions
    from: [office, 203.0.113.0/24]
    description: office clients
    limit: {connections_per_source: 10}
deny:
  - port: smtp
    from: [192.0.2.66]
`)
	got, err := pol.Desired(pol.Targets[0], Capabilities{Deny: true, Limit: true, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range got {
		lines = append(lines, r.String())
	}
	want := []string{
		"deny ipv4 tcp/25 from 192.0.2.66/32",
		"allow ipv4 tcp/25 from 0.0.0.0/0",
		"allow ipv6 tcp/25 from ::/0",
		`allow ipv4 tcp/465 from 203.0.113.0/24 limit 10/source "office clients"`,
		`allow ipv6 tcp/465 from 2001:db8:10::/48 limit 10/source "office clients"`,
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("rules (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name, policy, want string
		caps               Capabilities
	}{
		{"deny-on-an-allow-only-target", "deny:\n  - port: smtp\n    from: [192.0.2.1]\n", "deny entry cannot be enforced", Capabilities{}},
		{"prefix-list-on-a-host-firewall", "allow:\n  - port: smtp\n    from: [partners]\n", "holds the cloud reference pl-0123456789abcdef0", Capabilities{Deny: true}},
		{"description-the-backend-refuses", "allow:\n  - port: smtp\n    from: [anywhere]\n    description: bad\n", "no such text", Capabilities{
			Description: func(string) (string, error) { return "", errorString("no such text") }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, "version: 1\nsources:\n  partners: [pl-0123456789abcdef0]\n"+tc.policy)
			_, err := p.Desired(p.Targets[0], tc.caps)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.yaml:") {
				t.Fatalf("err = %v, want a located error saying %q", err, tc.want)
			}
		})
	}
}

func TestDiff_policyConflict(t *testing.T) {
	allow := rule("allow ipv4 tcp 25 192.0.2.5/32")
	allow.Line = 7
	deny := rule("deny ipv4 tcp 25 192.0.2.0/24")
	deny.Line = 12
	tp, err := Diff([]Rule{deny, allow}, &State{IPv6: true, Scopes: []Scope{{ID: "INPUT"}}}, allCaps, DiffOptions{MailPorts: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"medium policy-conflict"}, findingIDs(tp.Findings)); d != "" || tp.Findings[0].Line != 7 {
		t.Errorf("findings (-want +got):\n%s%+v", d, tp.Findings)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := ParsePolicy("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	return p
}

func TestDiff_oneFamilyOnPurposeAndFittedDescriptions(t *testing.T) {
	pol := mustParse(t, `version: 1
allow:
  - port: smtp
    from: [anywhere-ipv4]
  - port: submission
    from: [0.0.0.0/0]
    description: a description this target must shorten
`)
	caps := Capabilities{IPv6: true, Description: func(s string) (string, error) {
		if len(s) > 10 {
			return s[:10], nil
		}
		return s, nil
	}}
	desired, err := pol.Desired(pol.Targets[0], caps)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := Diff(desired, &State{IPv6: true, Scopes: []Scope{{ID: "INPUT"}}}, caps, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// anywhere-ipv4 says IPv4 on purpose; a bare 0.0.0.0/0 may be a
	// forgotten IPv6 and is reported.
	want := []string{"medium family-mismatch", "info description-fitted"}
	if d := cmp.Diff(want, findingIDs(tp.Findings)); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
	for _, f := range tp.Findings {
		if f.ID == FindingFamilyMismatch && !strings.Contains(f.Message, "port 587") {
			t.Errorf("family-mismatch about the wrong port: %s", f.Message)
		}
	}
}

func TestDiff_oneRulePerMatchRefusesToOverwriteAnUnmarkedRule(t *testing.T) {
	st := &State{IPv6: true, Scopes: []Scope{{ID: "ufw", Rules: []Observed{
		obs("allow ipv4 tcp 25 0.0.0.0/0", conditional, func(o *Observed) { o.Origin = "ufw limit" })}}}}
	want := rule("allow ipv4 tcp 25 0.0.0.0/0")
	want.Line = 4
	_, err := Diff([]Rule{want}, st, Capabilities{IPv6: true, OneRulePerMatch: true}, DiffOptions{})
	if err == nil || !strings.Contains(err.Error(), "policy line 4") || !strings.Contains(err.Error(), "ufw limit") {
		t.Fatalf("err = %v, want a refusal naming the ufw limit rule", err)
	}
	if _, err := Diff([]Rule{want}, st, Capabilities{IPv6: true}, DiffOptions{}); err != nil {
		t.Fatalf("a backend without the constraint: %v", err)
	}
}
