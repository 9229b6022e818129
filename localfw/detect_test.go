package localfw

import (
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	on := Probe{Installed: true, Active: true, Detail: "running"}
	off := Probe{Installed: true, Detail: "inactive"}
	none := Probe{Detail: "not found"}
	tests := []struct {
		name    string
		typ     string
		p       Probes
		force   bool
		want    string
		wantErr string
	}{
		{"auto-firewalld-running", "auto", Probes{on, off, on}, false, "firewalld", ""},
		{"auto-ufw-active", "auto", Probes{none, on, on}, false, "ufw", ""},
		{"auto-plain-iptables", "auto", Probes{none, off, on}, false, "iptables", ""},
		{"auto-iptables-without-ufw", "auto", Probes{none, none, on}, false, "iptables", ""},
		{"auto-two-frontends", "auto", Probes{on, on, on}, false, "", "both firewalld (running) and ufw (running) are active"},
		{"auto-nothing", "auto", Probes{none, none, none}, false, "", "found no firewall"},
		{"iptables-under-ufw-refused", "iptables", Probes{none, on, on}, false, "", "ufw (running) manages this host's firewall"},
		{"iptables-under-firewalld-forced", "iptables", Probes{on, off, on}, true, "iptables", ""},
		{"iptables-missing", "iptables", Probes{none, none, none}, true, "", "iptables is not installed"},
		{"ufw-inactive-still-served", "ufw", Probes{none, off, on}, false, "ufw", ""},
		{"ufw-missing", "ufw", Probes{none, none, on}, false, "", "ufw is not installed"},
		{"firewalld-not-running", "firewalld", Probes{off, none, on}, false, "", "firewalld is not running"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Pick(tc.typ, tc.p, tc.force)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Type != tc.want {
				t.Fatalf("Pick = %+v, %v; want %s", c, err, tc.want)
			}
			if c.Reason == "" {
				t.Error("the choice gives no reason")
			}
		})
	}
}
