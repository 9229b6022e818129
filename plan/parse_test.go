package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePolicy_locatesEveryMistake(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown-key", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\n    descripton: x\n",
			`test.yaml:5:5: allow[0].descripton: unknown key "descripton"`},
		{"typo-gets-a-suggestion", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\nownershp: managed\n",
			`did you mean "ownership"?`},
		{"bad-cidr", "version: 1\nsources:\n  office: [203.0.113.0/33]\nallow:\n  - port: smtp\n    from: [office]\n",
			`test.yaml:3:12: sources.office[0]: "203.0.113.0/33" is not a valid CIDR`},
		{"bad-ip", "version: 1\nallow:\n  - port: smtp\n    from: [10.0.0.256]\n",
			`test.yaml:4:12: allow[0].from[0]: "10.0.0.256" is not an IP address or CIDR`},
		{"unknown-source", "version: 1\nsources:\n  office: [192.0.2.0/24]\nallow:\n  - port: smtp\n    from: [ofice]\n",
			`test.yaml:6:12: allow[0].from[0]: unknown source "ofice"; define it under sources:, or use anywhere, anywhere-ipv4, anywhere-ipv6, an IP or a CIDR (did you mean "office"?)`},
		{"port-out-of-range", "version: 1\nallow:\n  - port: 70000\n    from: [anywhere]\n",
			"test.yaml:3:11: allow[0].port: 70000 is outside 1-65535"},
		{"port-zero", "version: 1\nallow:\n  - port: 0\n    from: [anywhere]\n", "0 is outside 1-65535"},
		{"unknown-port-name", "version: 1\nallow:\n  - port: imap\n    from: [anywhere]\n", `"imap" is not a port`},
		{"target-without-name", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\ntargets:\n  - type: ufw\n",
			"test.yaml:6:5: targets[0].name: the target has no name"},
		{"two-targets-one-name", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\ntargets:\n  - name: a\n    type: ufw\n  - name: a\n    type: iptables\n",
			`test.yaml:8:5: targets[1].name: target name "a" is already used on line 6`},
		{"field-of-another-type", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\ntargets:\n  - name: a\n    type: ufw\n    zone: public\n",
			`test.yaml:8:5: targets[0].zone: "zone" does not apply to a target of type ufw`},
		{"bad-version", "version: 2\nallow:\n  - port: smtp\n    from: [anywhere]\n", "test.yaml:1:10: version: version \"2\" is not supported"},
		{"no-version", "allow:\n  - port: smtp\n    from: [anywhere]\n", "add \"version: 1\""},
		{"not-yaml", "version: 1\nallow: [\n", "test.yaml:2:1"},
		{"limit-zero", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\n    limit: {connections_per_source: 0}\n",
			"test.yaml:5:37: allow[0].limit.connections_per_source"},
		{"alibaba-without-region", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\ntargets:\n  - name: cn\n    type: alibaba\n    security_groups: [sg-bp1examplegroup01]\n",
			"test.yaml:6:5: targets[0]: an alibaba target needs a region"},
		{"malformed-group-id", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\ntargets:\n  - name: prod\n    type: aws\n    region: us-east-1\n    security_groups: [sg-xyz]\n",
			`"sg-xyz" is not an aws security group id`},
		{"bad-ownership", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\nownership: mine\n", `"mine" is not an ownership mode`},
		{"empty", "", "the file is empty"},
		{"swapped-letters", "version: 1\nallow:\n  - port: smtp\n    form: [anywhere]\n", `did you mean "from"?`},
		{"misspelt-port-name", "version: 1\nallow:\n  - port: submision\n    from: [anywhere]\n", `did you mean "submission"?`},
		{"tab", "version: 1\nallow:\n\t- port: smtp\n", "is there a tab?"},
		{"second-document", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\n---\nfoo: bar\n", "test.yaml:5:1: the file holds a second YAML document"},
		{"bad-cidr-inline", "version: 1\nallow:\n  - port: smtp\n    from: [10.0.0.0/33]\n", `test.yaml:4:12: allow[0].from[0]: "10.0.0.0/33" is not a valid CIDR`},
		{"plus-sign-port", "version: 1\nallow:\n  - port: +25\n    from: [anywhere]\n", `"+25" is not a port`},
		{"empty-source-in-allow", "version: 1\nsources:\n  x: []\nallow:\n  - port: smtp\n    from: [x]\n", "test.yaml:6:11: allow[0].from: every source named here is empty"},
		{"empty-file-name", "version: 1\nsources:\n  x: {file: \"\"}\nallow:\n  - port: smtp\n    from: [anywhere]\n", "test.yaml:3:13: sources.x.file: expected the path of an address list"},
		{"control-character-in-target-name", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\ntargets:\n  - name: \"a\\x1b[31m\"\n", "is not a usable target name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy("test.yaml", []byte(tc.src))
			if err == nil {
				t.Fatal("ParsePolicy accepted a bad policy")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

func TestParsePolicy_mistakesComeInFileOrder(t *testing.T) {
	src := "version: 1\nsources:\n  a: [300.0.0.1]\nallow:\n  - port: 0\n    from: [nowhere]\ntargets:\n  - name: x\n    type: ufw\n    zone: z\n"
	_, err := ParsePolicy("test.yaml", []byte(src))
	es, ok := AsPolicyErrors(err)
	if !ok || len(es) < 3 {
		t.Fatalf("err = %v", err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Line < es[i-1].Line {
			t.Errorf("mistake on line %d listed after line %d", es[i].Line, es[i-1].Line)
		}
	}
}

func TestParsePolicy_addressListFile(t *testing.T) {
	dir := t.TempDir()
	list := "# blocklist\n198.51.100.7 ; one host\n\n2001:db8::1/64   # host bits are cleared\n 203.0.113.0/24\n"
	if err := os.WriteFile(filepath.Join(dir, "drop.txt"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "version: 1\nsources:\n  blocklist: {file: drop.txt}\nallow:\n  - port: smtp\n    from: [anywhere]\ndeny:\n  - port: smtp\n    from: [blocklist]\n"
	p, err := ParsePolicy(filepath.Join(dir, "mailfw.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range p.Sources["blocklist"].Entries {
		got = append(got, e.Value)
	}
	if strings.Join(got, " ") != "198.51.100.7/32 2001:db8::/64 203.0.113.0/24" {
		t.Errorf("entries = %v", got)
	}

	if err := os.WriteFile(filepath.Join(dir, "drop.txt"), []byte("198.51.100.7\nnot-an-ip\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ParsePolicy(filepath.Join(dir, "mailfw.yaml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), "drop.txt:2:1") {
		t.Errorf("err = %v, want it to name drop.txt:2:1", err)
	}

	if err := os.Chmod(filepath.Join(dir, "drop.txt"), 0); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 { // root reads the file anyway
		_, err = ParsePolicy(filepath.Join(dir, "mailfw.yaml"), []byte(src))
		if err == nil || !strings.Contains(err.Error(), "cannot read the address list") {
			t.Errorf("err = %v, want an unreadable-list error", err)
		}
	}
	os.Remove(filepath.Join(dir, "drop.txt"))
	_, err = ParsePolicy(filepath.Join(dir, "mailfw.yaml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), "mailfw.yaml:3:21: sources.blocklist.file: cannot read the address list") {
		t.Errorf("err = %v, want a located missing-list error", err)
	}
}

func TestCanonicalSource(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.10":        "198.51.100.10/32",
		"10.1.2.3/8":           "10.0.0.0/8",
		"2001:DB8:0:0::1":      "2001:db8::1/128",
		"2001:db8:0:0:1::/48":  "2001:db8::/48",
		" 203.0.113.0/24 ":     "203.0.113.0/24",
		"sg-0a1b2c3d4e5f60718": "sg-0a1b2c3d4e5f60718",
		"pl-0123456789abcdef0": "pl-0123456789abcdef0",
	} {
		got, _, err := CanonicalSource(in)
		if err != nil || got != want {
			t.Errorf("CanonicalSource(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "::ffff:192.0.2.1", "fe80::1%eth0", "300.1.1.1", "1.2.3.4/40", "example.com"} {
		if got, _, err := CanonicalSource(bad); err == nil {
			t.Errorf("CanonicalSource(%q) = %q, want an error", bad, got)
		}
	}
}

func TestDefaultPolicy_isAnMXOnTheLocalFirewall(t *testing.T) {
	p := DefaultPolicy()
	rules, err := p.Desired(p.Targets[0], Capabilities{Deny: true, Limit: true, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 6 || p.Targets[0].Type != "auto" {
		t.Fatalf("default policy: %d rules on a %s target, want 6 on auto", len(rules), p.Targets[0].Type)
	}
}

func TestLoadPolicy_endlessFileIsRefused(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := LoadPolicy("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("err = %v, want a size error", err)
	}
	src := "version: 1\nsources:\n  z: {file: /dev/zero}\nallow:\n  - port: smtp\n    from: [z]\n"
	if _, err := ParsePolicy("test.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "test.yaml:3:13") {
		t.Fatalf("err = %v, want a located size error", err)
	}
}

func TestLoadPolicy_largeFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nsources:\n  big:\n")
	for i := 0; b.Len() < 10<<20; i++ {
		b.WriteString("    - 10." + itoa(i>>16&255) + "." + itoa(i>>8&255) + "." + itoa(i&255) + "/32 # a comment to fill the line\n")
	}
	b.WriteString("allow:\n  - port: smtp\n    from: [big]\n")
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Sources["big"].Entries); n < 100000 {
		t.Errorf("read %d entries from a 10 MB policy", n)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
