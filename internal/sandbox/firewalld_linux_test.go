package sandbox

import (
	"os"
	"strings"
	"testing"
)

func TestFirewalld_answersInsideItsNamespaces(t *testing.T) {
	n := NewNetns(t)
	f := NewFirewalld(t, n)
	if got := strings.TrimSpace(f.Cmd("--state")); got != "running" {
		t.Fatalf("firewall-cmd --state = %q, want running", got)
	}
	f.Cmd("--permanent", "--zone=public", "--add-port=2525/tcp")
	if out := f.Cmd("--permanent", "--zone=public", "--list-ports"); !strings.Contains(out, "2525/tcp") {
		t.Errorf("permanent port not stored in the private configuration: %q", out)
	}
	b, err := os.ReadFile("/etc/firewalld/zones/public.xml")
	if err == nil && strings.Contains(string(b), "2525") {
		t.Errorf("the host's /etc/firewalld was changed")
	}
}
