package ufw

import (
	"fmt"
	"github.com/mailfw/mailfw/internal/golden"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mailfw/mailfw/plan"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testProfiles(t *testing.T) map[string][]portRange {
	t.Helper()
	out := map[string][]portRange{}
	for _, f := range []string{"postfix", "ufw-mailserver", "multi"} {
		p, err := parseProfiles(readTestdata(t, "applications.d/"+f))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range p {
			out[k] = v
		}
	}
	return out
}

// renderScope prints a scope and findings one rule a line, as goldens hold.
func renderScope(sc plan.Scope, findings []plan.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scope %s allow_order=%d deny_order=%d\n", sc.ID, sc.AllowOrder, sc.DenyOrder)
	for _, o := range sc.Rules {
		fmt.Fprintf(&b, "%3d %-60s owned=%t cond=%t fixed=%t desc=%q id=%q\n", o.Order,
			o.String(), o.Owned, o.Conditional, o.Fixed, o.Description, o.ID)
	}
	for _, f := range findings {
		fmt.Fprintf(&b, "finding %s %s: %s\n", f.ID, f.Severity, f.Message)
	}
	return b.String()
}

func TestObserve_recordedVariety(t *testing.T) {
	c := &config{IPv6: true, Profiles: testProfiles(t)}
	for _, f := range []struct {
		fam  plan.Family
		name string
	}{{plan.IPv4, "user.rules"}, {plan.IPv6, "user6.rules"}} {
		tuples, probs := parseRules(readTestdata(t, f.name))
		if len(probs) > 0 {
			t.Errorf("%s: unexpected problems %v", f.name, probs)
		}
		c.Files = append(c.Files, fileRules{Family: f.fam, File: "/etc/ufw/" + f.name,
			Tuples: tuples, Probs: probs})
	}
	sc, findings := c.observe()
	golden.Check(t, "observed-variety.golden", renderScope(sc, findings))
}

func TestObserve_badInput(t *testing.T) {
	rules := strings.Join([]string{
		"*filter",
		"### tuple ###   allow   tcp  25 0.0.0.0/0  any   198.51.100.7   in   comment=6d61696c6677",
		"### tuple ### allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 Exim%20SMTP - in",
		"### tuple ### frobnicate tcp 25 0.0.0.0/0 any 0.0.0.0/0 in",
		"### tuple ### allow tcp 25",
		"### tuple ### allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 in comment=zz",
		"### tuple ### allow tcp 99999 0.0.0.0/0 any 0.0.0.0/0 in",
		"### tuple ### allow tcp 25 0.0.0.0/0 any 2001:db8::1 in",
		"### tuple ### allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 sideways_eth0",
		"### tuple ### route:deny tcp 25 0.0.0.0/0 any 10.0.0.0/8 in_eth0!out_eth1",
		"### tuple ### allow esp any 0.0.0.0/0 any 0.0.0.0/0 in",
		"### tuple ### allow tcp 465 0.0.0.0/0 any 0.0.0.0/0 Postfix - in",
		"COMMIT",
	}, "\n")
	tuples, probs := parseRules([]byte(rules))
	c := &config{IPv6: true, Profiles: map[string][]portRange{
		"Postfix": {{Proto: "tcp", From: 25, To: 25}}}}
	c.Files = []fileRules{{Family: plan.IPv4, File: "/etc/ufw/user.rules", Tuples: tuples, Probs: probs}}
	sc, findings := c.observe()
	golden.Check(t, "observed-bad-input.golden", renderScope(sc, findings))
}

func TestParseTuple(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want tuple
		err  string
	}{
		{name: "plain-with-comment",
			in: " allow tcp 25 0.0.0.0/0 any 198.51.100.7 in comment=6d61696c6677",
			want: tuple{Key: "allow tcp 25 0.0.0.0/0 any 198.51.100.7 in", Action: "allow",
				Proto: "tcp", DPort: "25", Dst: "0.0.0.0/0", SPort: "any", Src: "198.51.100.7",
				Direction: "in", Comment: "mailfw"}},
		{name: "app-with-space",
			in: " allow tcp 587 ::/0 any ::/0 Postfix%20Submission - in",
			want: tuple{Key: "allow tcp 587 ::/0 any ::/0 Postfix%20Submission - in",
				Action: "allow", Proto: "tcp", DPort: "587", Dst: "::/0", SPort: "any",
				Src: "::/0", DApp: "Postfix Submission", Direction: "in"}},
		{name: "log-and-interface",
			in: " deny_log-all udp 53 0.0.0.0/0 any 0.0.0.0/0 in_eth0",
			want: tuple{Key: "deny_log-all udp 53 0.0.0.0/0 any 0.0.0.0/0 in_eth0",
				Action: "deny", LogType: "log-all", Proto: "udp", DPort: "53", Dst: "0.0.0.0/0",
				SPort: "any", Src: "0.0.0.0/0", Direction: "in", IfaceIn: "eth0"}},
		{name: "route-two-interfaces",
			in: " route:allow tcp 25 0.0.0.0/0 any 10.0.0.0/8 in_eth0!out_eth1",
			want: tuple{Key: "route:allow tcp 25 0.0.0.0/0 any 10.0.0.0/8 in_eth0!out_eth1",
				Action: "allow", Route: true, Proto: "tcp", DPort: "25", Dst: "0.0.0.0/0",
				SPort: "any", Src: "10.0.0.0/8", Direction: "in", IfaceIn: "eth0", IfaceOut: "eth1"}},
		{name: "old-six-field-format",
			in: " limit tcp 22 0.0.0.0/0 any 0.0.0.0/0",
			want: tuple{Key: "limit tcp 22 0.0.0.0/0 any 0.0.0.0/0", Action: "limit",
				Proto: "tcp", DPort: "22", Dst: "0.0.0.0/0", SPort: "any", Src: "0.0.0.0/0",
				Direction: "in"}},
		{name: "too-short", in: " allow tcp 25", err: "tuple has 3 fields"},
		{name: "bad-action", in: " permit tcp 25 0.0.0.0/0 any 0.0.0.0/0 in", err: `unknown action "permit"`},
		{name: "bad-log", in: " allow_loud tcp 25 0.0.0.0/0 any 0.0.0.0/0 in", err: `unknown log type`},
		{name: "bad-direction", in: " allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 up", err: `unknown direction`},
		{name: "bad-comment", in: " allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 in comment=xyz", err: "not hex"},
		{name: "comment-not-utf8", in: " allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 in comment=ff", err: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTuple(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("tuple (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want status
		err  bool
	}{
		{name: "recorded-active", in: string(readTestdata(t, "status-verbose.txt")),
			want: status{Active: true, DefaultIncoming: "deny"}},
		{name: "recorded-inactive", in: string(readTestdata(t, "status-verbose-inactive.txt"))},
		{name: "default-allow", in: "Status: active\nDefault: allow (incoming), allow (outgoing), disabled (routed)\n",
			want: status{Active: true, DefaultIncoming: "allow"}},
		{name: "not-root", in: "ERROR: You need to be root to run this script\n", err: true},
		{name: "unknown-state", in: "Status: confused\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("error = %v, want error %t", err, tt.err)
			}
			if d := cmp.Diff(tt.want, got); d != "" && !tt.err {
				t.Errorf("status (-want +got):\n%s", d)
			}
		})
	}
}

func TestProbeResult(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     string
		active bool
		err    bool
	}{
		{"active", "Status: active\n\nTo Action From\n", true, false},
		{"inactive", "Status: inactive\n", false, false},
		{"garbage", "Traceback (most recent call last):\n", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			active, detail, err := probeResult([]byte(tt.in))
			if active != tt.active || (err != nil) != tt.err {
				t.Errorf("probeResult = %t, %q, %v; want %t, error %t", active, detail, err,
					tt.active, tt.err)
			}
		})
	}
}

func TestParseProfiles(t *testing.T) {
	got := testProfiles(t)
	want := map[string][]portRange{
		"Postfix":            {{"tcp", 25, 25}},
		"Postfix SMTPS":      {{"tcp", 465, 465}},
		"Postfix Submission": {{"tcp", 587, 587}},
		"SMTP":               {{"tcp", 25, 25}},
		"Mail submission":    {{"tcp", 587, 587}},
		"Web Mail":           {{"tcp", 80, 80}, {"tcp", 443, 443}, {"tcp", 4190, 4190}, {"udp", 10000, 10010}},
	}
	for name, w := range want {
		if d := cmp.Diff(w, got[name]); d != "" {
			t.Errorf("profile %q (-want +got):\n%s", name, d)
		}
	}
	if _, err := parseProfiles([]byte("[Bad]\nports=25-26/tcp\n")); err == nil {
		t.Error("a profile with a bad port spec parsed without error")
	}
}

func TestParseDefaults_recorded(t *testing.T) {
	d := parseDefaults(readTestdata(t, "default-ufw"))
	if d["IPV6"] != "yes" || d["DEFAULT_INPUT_POLICY"] != "DROP" {
		t.Errorf("IPV6=%q DEFAULT_INPUT_POLICY=%q, want yes and DROP", d["IPV6"], d["DEFAULT_INPUT_POLICY"])
	}
}

func TestDescription(t *testing.T) {
	long := strings.Repeat("é", 150)
	for _, tt := range []struct{ name, in, want string }{
		{"plain", "office clients", "office clients"},
		{"quotes-and-shell", `bureau "Zürich" $(rm -rf) ;&|`, `bureau "Zürich" $(rm -rf) ;&|`},
		{"apostrophe", "Bob's relay", "Bob’s relay"},
		{"newline", "two\nlines\t", "two lines"},
		{"cut-on-rune", long, strings.Repeat("é", 100)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Description(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("Description(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestOwnedComment(t *testing.T) {
	for _, tt := range []struct {
		in    string
		owned bool
		desc  string
	}{
		{"mailfw", true, ""},
		{"mailfw: office clients", true, "office clients"},
		{"mailfwx", false, "mailfwx"},
		{"by Fail2Ban after 5 attempts", false, "by Fail2Ban after 5 attempts"},
		{"", false, ""},
	} {
		owned, desc := ownedComment(tt.in)
		if owned != tt.owned || desc != tt.desc {
			t.Errorf("ownedComment(%q) = %t, %q; want %t, %q", tt.in, owned, desc, tt.owned, tt.desc)
		}
	}
}

// writeRoot lays out ufw's files under a temporary root.
func writeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadConfig_badProfileIsAFindingNotARefusal(t *testing.T) {
	root := writeRoot(t, map[string]string{
		fileDefaults:               "IPV6=no\nDEFAULT_INPUT_POLICY=\"DROP\"\n",
		fileRules4:                 string(readTestdata(t, "user.rules")),
		fileRules6:                 "### tuple ### this is not read with IPV6=no\n",
		dirApps + "/broken":        "[Broken]\nports=25-26/tcp\n",
		dirApps + "/postfix":       string(readTestdata(t, "applications.d/postfix")),
		dirApps + "/ufw-webserver": "[WWW]\nports=80/tcp\n",
	})
	c, err := New(WithRoot(root)).readConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.IPv6 || len(c.Files) != 1 {
		t.Errorf("IPv6 %t, %d files read; want false and only user.rules", c.IPv6, len(c.Files))
	}
	if err := c.readable(); err != nil {
		t.Errorf("a broken profile file blocks writing: %v", err)
	}
	_, findings := c.observe()
	if !slices.ContainsFunc(findings, func(f plan.Finding) bool { return f.ID == FindingAppUnreadable }) {
		t.Errorf("no %s finding in %v", FindingAppUnreadable, findings)
	}
	if _, ok := c.Profiles["Postfix Submission"]; !ok {
		t.Error("the good profile file was not read")
	}
}
