package sandbox

import (
	"os"
	"strings"
	"testing"
)

func TestUFW_keepsHostConfigUntouched(t *testing.T) {
	before, err := os.ReadFile("/etc/ufw/user.rules")
	if err != nil {
		t.Skipf("no host ufw configuration: %v", err)
	}
	conf, _ := os.ReadFile("/etc/ufw/ufw.conf")
	u := NewUFW(t)
	u.Run("ufw", "--force", "enable")
	u.Run("ufw", "allow", "proto", "tcp", "from", "198.51.100.7", "to", "any", "port", "25",
		"comment", "mailfw")
	if out := u.Run("ufw", "status"); !strings.Contains(out, "Status: active") {
		t.Errorf("ufw status in the sandbox:\n%s", out)
	}
	if got := u.ReadFile("/etc/ufw/user.rules"); !strings.Contains(got, "198.51.100.7") {
		t.Errorf("private user.rules lacks the rule:\n%s", got)
	}
	after, _ := os.ReadFile("/etc/ufw/user.rules")
	conf2, _ := os.ReadFile("/etc/ufw/ufw.conf")
	if string(before) != string(after) || string(conf) != string(conf2) {
		t.Error("the host's /etc/ufw changed")
	}
	if out := u.Run("iptables", "-S", "ufw-user-input"); !strings.Contains(out, "198.51.100.7") {
		t.Errorf("namespace's ufw-user-input lacks the rule:\n%s", out)
	}
}
