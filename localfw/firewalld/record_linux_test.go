package firewalld

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailfw/mailfw/internal/sandbox"
)

var record = flag.Bool("record", false, "record real firewall-cmd listings into testdata/")

// TestRecord_listings captures what the real firewall-cmd prints for a
// varied configuration; the parser tests read these recordings.
func TestRecord_listings(t *testing.T) {
	if !*record {
		t.Skip("run with -record to capture new recordings")
	}
	fw := sandbox.NewFirewalld(t, sandbox.NewNetns(t))
	steps := [][]string{
		{"--permanent", "--new-zone=mailrelays"},
		{"--permanent", "--zone=mailrelays", "--add-source=192.0.2.0/24"},
		{"--permanent", "--zone=mailrelays", "--add-source=2001:db8:77::/48"},
		{"--permanent", "--zone=mailrelays", "--add-service=smtp"},
		{"--permanent", "--zone=mailrelays", "--add-port=2525/tcp"},
		{"--permanent", "--new-zone=backoffice"},
		{"--permanent", "--zone=backoffice", "--add-source=198.18.0.0/15"},
		{"--permanent", "--zone=public", "--add-service=smtp", "--add-service=smtp-submission"},
		{"--permanent", "--zone=public", "--add-port=465/tcp", "--add-port=10000-10100/tcp", "--add-port=53/udp"},
		{"--permanent", "--zone=public",
			`--add-rich-rule=rule family="ipv4" source address="203.0.113.0/24" port port="587" protocol="tcp" accept`,
			`--add-rich-rule=rule family="ipv6" source address="2001:db8:10::/48" port port="587" protocol="tcp" accept`,
			`--add-rich-rule=rule family="ipv4" source address="198.51.100.0/24" service name="smtps" accept`,
			`--add-rich-rule=rule family="ipv4" source address="198.51.100.7" port port="25" protocol="tcp" accept limit value="10/m"`,
			`--add-rich-rule=rule family="ipv4" source address="198.51.100.8" port port="25" protocol="tcp" log prefix="smtp " level="info" accept`,
			`--add-rich-rule=rule family="ipv4" source NOT address="10.0.0.0/8" port port="25" protocol="tcp" drop`,
			`--add-rich-rule=rule priority="-5" family="ipv6" source address="2001:db8:bad::/48" reject`,
			`--add-rich-rule=rule port port="25" protocol="tcp" accept`,
		},
		{"--permanent", "--new-policy=mailfw-allow"},
		{"--permanent", "--policy=mailfw-allow", "--set-priority=100"},
		{"--permanent", "--policy=mailfw-allow", "--add-ingress-zone=ANY"},
		{"--permanent", "--policy=mailfw-allow", "--add-egress-zone=HOST"},
		{"--permanent", "--policy=mailfw-allow", "--set-short=mailfw"},
		{"--permanent", "--policy=mailfw-allow",
			`--add-rich-rule=rule family="ipv4" port port="25" protocol="tcp" accept`,
			`--add-rich-rule=rule family="ipv6" port port="25" protocol="tcp" accept`,
			`--add-rich-rule=rule family="ipv4" source address="203.0.113.0/24" port port="587" protocol="tcp" accept`,
			`--add-rich-rule=rule family="ipv4" source address="198.51.100.10/32" port port="465" protocol="tcp" accept`,
			`--add-rich-rule=rule family="ipv6" source address="2001:db8:10::/48" port port="465" protocol="tcp" accept`,
			`--add-rich-rule=rule family="ipv4" port port="2000-2100" protocol="tcp" accept`,
		},
		{"--permanent", "--new-policy=mailfw-deny"},
		{"--permanent", "--policy=mailfw-deny", "--set-priority=-100"},
		{"--permanent", "--policy=mailfw-deny", "--add-ingress-zone=ANY"},
		{"--permanent", "--policy=mailfw-deny", "--add-egress-zone=HOST"},
		{"--permanent", "--policy=mailfw-deny",
			`--add-rich-rule=rule family="ipv4" source address="192.0.2.66/32" port port="25" protocol="tcp" reject`,
			`--add-rich-rule=rule family="ipv6" source address="2001:db8:66::/64" port port="25" protocol="tcp" reject`,
		},
		{"--reload"},
		{"--zone=public", "--add-port=8025/tcp"},
		{"--zone=public", "--remove-service=ssh"},
		{"--zone=public", `--add-rich-rule=rule family="ipv4" source address="192.0.2.99" reject type="icmp-port-unreachable"`},
		{"--zone=public", "--add-interface=lo"},
	}
	for _, s := range steps {
		fw.Cmd(s...)
	}
	listings := map[string][]string{
		"zones-runtime.txt":      {"--list-all-zones"},
		"zones-permanent.txt":    {"--permanent", "--list-all-zones"},
		"policies-runtime.txt":   {"--list-all-policies"},
		"policies-permanent.txt": {"--permanent", "--list-all-policies"},
		"active-zones.txt":       {"--get-active-zones"},
		"default-zone.txt":       {"--get-default-zone"},
		"info-policy.txt":        {"--info-policy=mailfw-allow"},
	}
	var services string
	for _, s := range []string{"smtp", "smtps", "smtp-submission", "ssh", "dhcpv6-client"} {
		services += fw.Cmd("--info-service=" + s)
	}
	if err := os.WriteFile(filepath.Join("testdata", "services.txt"), []byte(services), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range listings {
		out := fw.Cmd(args...)
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
