package firewalld

import (
	"fmt"
	"github.com/mailfw/mailfw/internal/golden"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mailfw/mailfw/plan"
)

func TestParseRichRule(t *testing.T) {
	tests := []struct {
		name string
		text string
		want richRule
	}{
		{"mailfw-allow", `rule family="ipv4" source address="198.51.100.10/32" port port="465" protocol="tcp" accept`,
			richRule{Family: "ipv4", Source: "198.51.100.10/32", Element: "port", Port: "465", Protocol: "tcp", Action: "accept"}},
		{"no-family-no-source", `rule port port="25" protocol="tcp" accept`,
			richRule{Element: "port", Port: "25", Protocol: "tcp", Action: "accept"}},
		{"fail2ban-ban", `rule family="ipv4" source address="192.0.2.99" reject type="icmp-port-unreachable"`,
			richRule{Family: "ipv4", Source: "192.0.2.99", Action: "reject", RejectType: "icmp-port-unreachable"}},
		{"priority-v6-reject", `rule priority="-5" family="ipv6" source address="2001:db8:bad::/48" reject`,
			richRule{Priority: -5, Family: "ipv6", Source: "2001:db8:bad::/48", Action: "reject"}},
		{"inverted-source", `rule family="ipv4" source NOT address="10.0.0.0/8" port port="25" protocol="tcp" drop`,
			richRule{Family: "ipv4", Source: "10.0.0.0/8", SourceNot: true, Element: "port", Port: "25", Protocol: "tcp", Action: "drop"}},
		{"log-with-spaces", `rule family="ipv4" source address="198.51.100.8" port port="25" protocol="tcp" log prefix="smtp " level="info" accept`,
			richRule{Family: "ipv4", Source: "198.51.100.8", Element: "port", Port: "25", Protocol: "tcp", Log: true, Action: "accept"}},
		{"action-limit", `rule family="ipv4" source address="198.51.100.7" port port="25" protocol="tcp" accept limit value="10/m"`,
			richRule{Family: "ipv4", Source: "198.51.100.7", Element: "port", Port: "25", Protocol: "tcp", Action: "accept", ActionLimit: "10/m"}},
		{"log-limit-is-not-action-limit", `rule service name="smtp" log limit value="1/m" accept`,
			richRule{Element: "service", Service: "smtp", Log: true, Action: "accept"}},
		{"service", `rule family="ipv4" source address="198.51.100.0/24" service name="smtps" accept`,
			richRule{Family: "ipv4", Source: "198.51.100.0/24", Element: "service", Service: "smtps", Action: "accept"}},
		{"icmp", `rule family="ipv6" icmp-type name="redirect" accept`,
			richRule{Family: "ipv6", Element: "icmp-type", Action: "accept"}},
		{"ipset-source", `rule source ipset="blocklist" drop`,
			richRule{SourceOther: "ipset=blocklist", Action: "drop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRichRule(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Text = tt.text
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("parseRichRule (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseRichRule_refusesGarbage(t *testing.T) {
	for _, text := range []string{`accept`, `rule family="ipv4 accept`, `rule frobnicate accept`} {
		if _, err := parseRichRule(text); err == nil {
			t.Errorf("parseRichRule(%q) gave no error", text)
		}
	}
}

func TestRenderRule_roundTripsThroughOwnedRule(t *testing.T) {
	for _, r := range []plan.Rule{
		{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "0.0.0.0/0", Verdict: plan.Allow},
		{Family: plan.IPv6, Protocol: "tcp", Port: 587, Source: "2001:db8:10::/48", Verdict: plan.Allow},
		{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "192.0.2.66/32", Verdict: plan.Deny},
	} {
		text, err := renderRule(r)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := parseRichRule(text)
		if err != nil {
			t.Fatal(err)
		}
		policy := AllowPolicy
		if r.Verdict == plan.Deny {
			policy = DenyPolicy
		}
		o, ok := ownedRule(policy, rr)
		if !ok {
			t.Fatalf("%q is not recognised as mailfw's own", text)
		}
		got, _ := o.AsRule()
		if d := cmp.Diff(r, got); d != "" {
			t.Errorf("round trip of %q (-want +got):\n%s", text, d)
		}
	}
}

func TestRenderRule_refusesWhatFirewalldCannotHold(t *testing.T) {
	for _, r := range []plan.Rule{
		{Family: plan.FamilyAny, Protocol: "tcp", Port: 25, Source: "sg-0123", Verdict: plan.Allow},
		{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "0.0.0.0/0", Verdict: plan.Allow,
			Limit: &plan.Limit{ConnectionsPerSource: 10}},
		{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "2001:db8::/32", Verdict: plan.Allow},
	} {
		if _, err := renderRule(r); err == nil {
			t.Errorf("renderRule(%s) gave no error", r)
		}
	}
}

func readRecording(t *testing.T, name string) map[string]*block {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := parseBlocks(string(b))
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return byName(bs)
}

func recordedReading(t *testing.T) *reading {
	svc := map[string][]portSpec{}
	for name, b := range readRecording(t, "services.txt") {
		for _, p := range b.Fields["ports"] {
			ps, err := parsePortSpec(p)
			if err != nil {
				t.Fatal(err)
			}
			svc[name] = append(svc[name], ps)
		}
	}
	return &reading{
		runtime:     view{Zones: readRecording(t, "zones-runtime.txt"), Policies: readRecording(t, "policies-runtime.txt")},
		permanent:   view{Zones: readRecording(t, "zones-permanent.txt"), Policies: readRecording(t, "policies-permanent.txt")},
		services:    svc,
		defaultZone: "public",
		version:     "1.3.3",
	}
}

func TestParseBlocks_recordedZones(t *testing.T) {
	zones := readRecording(t, "zones-runtime.txt")
	pub := zones["public"]
	if pub == nil || !pub.Active {
		t.Fatalf("zone public missing or not active: %+v", pub)
	}
	if got := len(pub.Fields["rich rules"]); got != 9 {
		t.Errorf("public has %d rich rules, want 9", got)
	}
	if d := cmp.Diff([]string{"465/tcp", "10000-10100/tcp", "53/udp", "8025/tcp"}, pub.Fields["ports"]); d != "" {
		t.Errorf("public ports (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"192.0.2.0/24", "2001:db8:77::/48"}, zones["mailrelays"].Fields["sources"]); d != "" {
		t.Errorf("mailrelays sources (-want +got):\n%s", d)
	}
}

// renderState prints a state as sorted lines for golden comparison.
func renderState(st *plan.State) string {
	var lines []string
	for _, sc := range st.Scopes {
		lines = append(lines, fmt.Sprintf("scope %s allow_order=%d deny_order=%d", sc.ID, sc.AllowOrder, sc.DenyOrder))
		for _, r := range sc.Rules {
			flags := ""
			if r.Owned {
				flags += " owned"
			}
			if r.Fixed {
				flags += " fixed"
			}
			if r.Conditional {
				flags += " conditional"
			}
			lines = append(lines, fmt.Sprintf("  %7d %s%s id=%q", r.Order, r, flags, r.ID))
		}
	}
	var fs []string
	for _, f := range st.Findings {
		fs = append(fs, fmt.Sprintf("finding %s %s: %s", f.ID, f.Severity, f.Message))
	}
	sort.Strings(fs)
	return strings.Join(append(lines, fs...), "\n") + "\n"
}

func TestTranslate_recordedState(t *testing.T) {
	golden.Check(t, "translate.golden", renderState(recordedReading(t).translate()))
}

func TestRestoreCalls_groupsByHolderAndKind(t *testing.T) {
	items := []item{
		{"zone", "public", "rich rules", `rule family="ipv4" source address="192.0.2.9" reject`},
		{"zone", "public", "ports", "8025/tcp"},
		{"zone", "public", "ports", "8026/tcp"},
		{"zone", "public", "interfaces", "eth0"},
		{"zone", "public", "masquerade", "yes"},
		{"policy", "other", "services", "smtp"},
	}
	got := restoreCalls(items, "add")
	want := [][]string{
		{"--policy=other", "--add-service=smtp"},
		{"--zone=public", "--add-masquerade"},
		{"--zone=public", "--add-port=8025/tcp", "--add-port=8026/tcp"},
		{"--zone=public", `--add-rich-rule=rule family="ipv4" source address="192.0.2.9" reject`},
		{"--zone=public", "--change-interface=eth0"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("restoreCalls add (-want +got):\n%s", d)
	}
	got = restoreCalls(items[1:2], "remove")
	if d := cmp.Diff([][]string{{"--zone=public", "--remove-port=8025/tcp"}}, got); d != "" {
		t.Errorf("restoreCalls remove (-want +got):\n%s", d)
	}
}

func TestViewItems_differenceLeavesOutMailfwPolicies(t *testing.T) {
	rd := recordedReading(t)
	lost := foreign(minus(rd.runtime.items(), rd.permanent.items()))
	var got []string
	for _, it := range lost {
		got = append(got, it.String())
	}
	want := []string{
		"zone public interface lo",
		"zone public port 8025/tcp",
		`zone public rich-rule rule family="ipv4" source address="192.0.2.99" reject type="icmp-port-unreachable"`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("runtime-only entries (-want +got):\n%s", d)
	}
}

func TestSplitOwnedID_refusesForeignHolders(t *testing.T) {
	for _, id := range []string{"zone:public|service smtp", "policy:other|rule port port=\"25\" accept", "mailfw-allow"} {
		if _, _, err := splitOwnedID(id); err == nil {
			t.Errorf("splitOwnedID(%q) gave no error", id)
		}
	}
	p, text, err := splitOwnedID(ownedID(AllowPolicy, `rule family="ipv4" port port="25" protocol="tcp" accept`))
	if err != nil || p != AllowPolicy || !strings.HasPrefix(text, "rule ") {
		t.Errorf("splitOwnedID round trip = %q, %q, %v", p, text, err)
	}
}
