package localfw

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

// kindOf opens a type-auto target through prefix and returns the backend
// kind its state reports.
func kindOf(t *testing.T, typ string, prefix []string) (string, error) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	r := execx.New(logger, execx.WithPrefix(prefix...))
	b, err := OpenWith(context.Background(), plan.Target{Name: "host", Type: typ},
		providers.Env{Logger: logger}, r)
	if err != nil {
		return "", err
	}
	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return st.Kind, nil
}

// noHostBus keeps firewall-cmd in a plain namespace from reaching a
// firewalld of the machine that runs the tests.
func noHostBus(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/mailfw-test")
}

func TestDetect_plainNamespaceIsIptables(t *testing.T) {
	sandbox.Require(t, "iptables", "iptables-save")
	noHostBus(t)
	ns := sandbox.NewNetns(t)
	kind, err := kindOf(t, "auto", ns.Prefix())
	if err != nil || !strings.HasPrefix(kind, "iptables (") {
		t.Fatalf("auto chose %q, %v; want iptables", kind, err)
	}
}

func TestDetect_activeUFWIsPicked(t *testing.T) {
	noHostBus(t)
	u := sandbox.NewUFW(t)
	kind, err := kindOf(t, "auto", u.Prefix())
	if err != nil || !strings.HasPrefix(kind, "iptables") {
		t.Fatalf("with ufw inactive, auto chose %q, %v; want iptables", kind, err)
	}
	u.Run("ufw", "--force", "enable")
	kind, err = kindOf(t, "auto", u.Prefix())
	if err != nil || kind != "ufw" {
		t.Fatalf("with ufw active, auto chose %q, %v; want ufw", kind, err)
	}
	if _, err := kindOf(t, "iptables", u.Prefix()); err == nil || !strings.Contains(err.Error(), "ufw") {
		t.Errorf("an explicit iptables target under an active ufw: err = %v, want a refusal naming ufw", err)
	}
}

func TestDetect_runningFirewalldIsPicked(t *testing.T) {
	fw := sandbox.NewFirewalld(t, sandbox.NewNetns(t))
	kind, err := kindOf(t, "auto", fw.Prefix())
	if err != nil || !strings.HasPrefix(kind, "firewalld") {
		t.Fatalf("with firewalld running, auto chose %q, %v; want firewalld", kind, err)
	}
}
