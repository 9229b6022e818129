package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/plan"
)

const iptablesPolicy = `version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
allow:
  - port: smtp
    from: [anywhere]
    description: inbound mail
  - port: submission
    from: [office]
    description: office clients
deny:
  - port: smtp
    from: [192.0.2.66]
targets:
  - name: host
    type: iptables
`

func TestCLI_defaultPolicyPlanOnAnEmptyHost(t *testing.T) {
	c := newCLI(t)
	before := c.save()
	r := c.mailfw("", "plan")
	c.expect(r, 0, "Target host (auto-detected iptables (", "+ allow ipv4 tcp/25 from 0.0.0.0/0",
		"+ allow ipv6 tcp/25 from ::/0", "+ allow ipv4 tcp/587 from 0.0.0.0/0", "+ allow ipv6 tcp/465 from ::/0",
		"Plan: 6 to add, 0 to change, 0 to remove.")
	c.expect(c.mailfw("", "plan", "--detailed-exitcode"), 2)
	if !strings.Contains(r.stdout, "no local process listens on TCP port 25,") {
		t.Errorf("no port-not-listening finding on a host with no mail server:\n%s", r)
	}
	c.ns.Listen("[::]:25")
	if r := c.mailfw("", "plan"); strings.Contains(r.stdout, "listens on TCP port 25,") || !strings.Contains(r.stdout, "port 587,") {
		t.Errorf("port-not-listening findings wrong with a listener on 25:\n%s", r)
	}
	if after := c.save(); after != before {
		t.Errorf("plan changed the firewall:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestCLI_applyThenPlanHasNoChanges(t *testing.T) {
	c := newCLI(t)
	c.write("mailfw.yaml", iptablesPolicy)
	c.expect(c.mailfw("", "apply", "--auto-approve"), 0, "Apply complete: 5 added, 0 changed, 0 removed.")
	r := c.mailfw("", "plan", "--detailed-exitcode")
	c.expect(r, 0, "No changes.")
	saved := c.save()
	for _, want := range []string{"-A INPUT -m comment --comment mailfw -j MAILFW-INPUT", "--comment \"mailfw: office clients\"", "192.0.2.66/32"} {
		if !strings.Contains(saved, want) {
			t.Errorf("iptables-save lacks %q:\n%s", want, saved)
		}
	}
	c.expect(c.mailfw("", "audit", "--fail-on", "drift"), 0, "no drift")
}

func TestCLI_applyWithoutATerminalNeedsAutoApprove(t *testing.T) {
	c := newCLI(t)
	c.write("mailfw.yaml", iptablesPolicy)
	before := c.save()
	c.expect(c.mailfw("", "apply"), 1, "standard input is not a terminal", "--auto-approve")
	if c.save() != before {
		t.Error("a refused apply changed the firewall")
	}
}

func TestCLI_stalePlanFileIsRefusedWhole(t *testing.T) {
	c := newCLI(t)
	c.write("mailfw.yaml", iptablesPolicy)
	c.expect(c.mailfw("", "plan", "--out", "p.plan"), 0, "Saved the plan to p.plan")
	c.ns.Run("iptables", "-w", "-I", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	before := c.save()
	c.expect(c.mailfw("", "apply", "p.plan"), 1, "changed since the plan p.plan was made", "nothing was changed")
	if after := c.save(); after != before {
		t.Errorf("a stale plan changed the firewall:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A fresh plan applies, with the policy found from the plan file.
	c.write("elsewhere.yaml", iptablesPolicy)
	c.expect(c.mailfw("", "plan", "-c", "elsewhere.yaml", "--out", "p.plan"), 0)
	c.expect(c.mailfw("", "apply", "p.plan"), 0, "Apply complete: 5 added")
	c.expect(c.mailfw("", "apply", "p.plan"), 1, "changed since the plan")
}

func TestCLI_editedPlanFileIsRefused(t *testing.T) {
	c := newCLI(t)
	c.write("mailfw.yaml", iptablesPolicy)
	c.expect(c.mailfw("", "plan", "--out", "p.plan"), 0)
	data, err := os.ReadFile(filepath.Join(c.dir, "p.plan"))
	if err != nil {
		t.Fatal(err)
	}
	c.write("p.plan", strings.Replace(string(data), `"port": 587`, `"port": 22`, 1))
	before := c.save()
	c.expect(c.mailfw("", "apply", "p.plan"), 1, "not the ones the policy gives", "nothing was changed")
	if c.save() != before {
		t.Error("an edited plan changed the firewall")
	}
}

func TestCLI_planFileFromAnotherPolicyIsRefused(t *testing.T) {
	c := newCLI(t)
	c.write("mailfw.yaml", iptablesPolicy)
	c.expect(c.mailfw("", "plan", "--out", "p.plan"), 0)
	c.write("mailfw.yaml", strings.Replace(iptablesPolicy, "192.0.2.66", "192.0.2.67", 1))
	c.expect(c.mailfw("", "apply", "p.plan"), 1, "made from another policy")
}

func TestCLI_removingAnEntryRemovesExactlyItsRules(t *testing.T) {
	c := newCLI(t)
	c.write("mailfw.yaml", iptablesPolicy)
	c.expect(c.mailfw("", "apply", "--auto-approve"), 0)
	c.ns.Run("iptables", "-w", "-I", "INPUT", "-p", "tcp", "--dport", "587", "-s", "198.51.100.0/24", "-j", "ACCEPT")
	without := strings.Replace(iptablesPolicy, "  - port: submission\n    from: [office]\n    description: office clients\n", "", 1)
	c.write("mailfw.yaml", without)
	r := c.mailfw("", "plan", "-o", "json")
	c.expect(r, 0)
	var pf plan.File
	if err := json.Unmarshal([]byte(r.stdout), &pf); err != nil {
		t.Fatalf("plan -o json is not JSON: %v\n%s", err, r.stdout)
	}
	if pf.Summary != (plan.Summary{Remove: 2}) {
		t.Fatalf("summary = %+v, want 2 removals:\n%s", pf.Summary, r.stdout)
	}
	for _, ch := range pf.Targets[0].Changes {
		if ch.Rule.Port != 587 || ch.Action != plan.Remove {
			t.Errorf("unexpected change %+v", ch)
		}
	}
	c.expect(c.mailfw("", "apply", "--auto-approve"), 0, "0 added, 0 changed, 2 removed")
	saved := c.save()
	if strings.Contains(saved, "office clients") {
		t.Errorf("the removed entry's rules are still there:\n%s", saved)
	}
	if !strings.Contains(saved, "-A INPUT -s 198.51.100.0/24 -p tcp -m tcp --dport 587 -j ACCEPT") {
		t.Errorf("the unmarked 587 rule is gone:\n%s", saved)
	}
	if !strings.Contains(r.stdout, "open-beyond-policy") {
		t.Errorf("the unmarked 587 rule was not reported as a finding:\n%s", r.stdout)
	}
}

func TestCLI_descriptionWithShellMetacharactersRoundTrips(t *testing.T) {
	c := newCLI(t)
	desc := `relays "A" & 'B'; $(touch /tmp/mailfw-pwned) | ünïcødé — ok`
	c.write("mailfw.yaml", "version: 1\nallow:\n  - port: smtp\n    from: [198.51.100.10]\n    description: '"+
		strings.ReplaceAll(desc, "'", "''")+"'\ntargets:\n  - name: host\n    type: iptables\n")
	c.expect(c.mailfw("", "apply", "--auto-approve"), 0, "Apply complete: 1 added")
	c.expect(c.mailfw("", "plan", "--detailed-exitcode"), 0, "No changes.")
	saved := c.save()
	if !strings.Contains(saved, "mailfw: relays") {
		t.Errorf("description not in the rule comment:\n%s", saved)
	}
	if strings.Contains(c.ns.Run("ls", "/tmp"), "mailfw-pwned") {
		t.Error("the description ran as a shell command")
	}
}

func TestCLI_badPolicyChangesNothing(t *testing.T) {
	c := newCLI(t)
	c.ns.Run("iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	before := c.save()
	for _, tc := range []struct{ name, policy, want string }{
		{"unknown-key", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\n    colour: red\n", "mailfw.yaml:5:5: allow[0].colour: unknown key"},
		{"bad-cidr", "version: 1\nsources:\n  a: [10.0.0.0/40]\nallow:\n  - port: smtp\n    from: [a]\n", "mailfw.yaml:3:7: sources.a[0]"},
		{"unknown-source", "version: 1\nallow:\n  - port: smtp\n    from: [office]\n", "mailfw.yaml:4:12: allow[0].from[0]: unknown source \"office\""},
		{"port-out-of-range", "version: 1\nallow:\n  - port: 65536\n    from: [anywhere]\n", "mailfw.yaml:3:11: allow[0].port"},
		{"duplicate-target", "version: 1\nallow:\n  - port: smtp\n    from: [anywhere]\ntargets:\n  - name: h\n    type: iptables\n  - name: h\n    type: iptables\n", "mailfw.yaml:8:5: targets[1].name"},
		{"unreadable-list", "version: 1\nsources:\n  b: {file: missing.txt}\nallow:\n  - port: smtp\n    from: [b]\n", "mailfw.yaml:3:13: sources.b.file: cannot read the address list"},
		{"cloud-ref-on-host", "version: 1\nsources:\n  p: [pl-0123456789abcdef0]\nallow:\n  - port: smtp\n    from: [p]\ntargets:\n  - name: h\n    type: iptables\n", "mailfw.yaml:5:5: allow[0].from: source \"p\" holds the cloud reference pl-0123456789abcdef0, which a target of type iptables cannot match"},
		{"group-ref-on-host", "version: 1\nallow:\n  - port: smtp\n    from: [sg-0a1b2c3d4e5f60718]\ntargets:\n  - name: h\n    type: iptables\n", "cloud reference sg-0a1b2c3d4e5f60718"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.write("mailfw.yaml", tc.policy)
			c.expect(c.mailfw("", "apply", "--auto-approve"), 1, tc.want)
			c.expect(c.mailfw("", "plan"), 1, tc.want)
			c.expect(c.mailfw("", "validate"), 1, tc.want)
			if after := c.save(); after != before {
				t.Errorf("a bad policy changed the firewall:\n%s", after)
			}
		})
	}
}

func TestCLI_auditFailsOnFindingsAndDrift(t *testing.T) {
	c := newCLI(t)
	c.write("mailfw.yaml", iptablesPolicy)
	c.ns.Run("iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "465", "-j", "ACCEPT")
	c.expect(c.mailfw("", "audit"), 2, "open-beyond-policy", "drift: 5 to add")
	c.expect(c.mailfw("", "audit", "--fail-on", "critical"), 0)
	c.expect(c.mailfw("", "audit", "--fail-on", "drift"), 2)
	r := c.mailfw("", "audit", "-o", "sarif", "--fail-on", "none")
	c.expect(r, 0, `"version": "2.1.0"`, `"ruleId": "open-beyond-policy"`)
	c.expect(c.mailfw("", "audit", "--fail-on", "severe"), 1, "--fail-on severe")
}
