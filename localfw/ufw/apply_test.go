package ufw

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mailfw/mailfw/plan"
)

// configOf builds a config from tuple lines of each family.
func configOf(t *testing.T, v4, v6 []string) *config {
	t.Helper()
	c := &config{IPv6: true}
	for _, f := range []struct {
		fam   plan.Family
		lines []string
	}{{plan.IPv4, v4}, {plan.IPv6, v6}} {
		var data strings.Builder
		for _, l := range f.lines {
			data.WriteString(tupleMark + " " + l + "\n")
		}
		tuples, probs := parseRules([]byte(data.String()))
		if len(probs) > 0 {
			t.Fatalf("bad test tuples: %v", probs)
		}
		c.Files = append(c.Files, fileRules{Family: f.fam, Tuples: tuples})
	}
	return c
}

func rule(fam plan.Family, port int, src string, v plan.Verdict, desc string) plan.Rule {
	return plan.Rule{Family: fam, Protocol: "tcp", Port: port, Source: src, Verdict: v, Description: desc}
}

func add(r plan.Rule) plan.Change { return plan.Change{Action: plan.Add, Rule: r, Scope: ScopeID} }

func TestPlan_steps(t *testing.T) {
	owned := "comment=" + "6d61696c6677" // "mailfw"
	tests := []struct {
		name    string
		v4, v6  []string
		changes []plan.Change
		want    [][]string // argv of each step; nil for a step with no call
		err     string
	}{{
		name: "anywhere-pair-is-one-call",
		changes: []plan.Change{
			add(rule(plan.IPv4, 25, "0.0.0.0/0", plan.Allow, "")),
			add(rule(plan.IPv6, 25, "::/0", plan.Allow, "")),
		},
		want: [][]string{{"ufw", "allow", "proto", "tcp", "to", "any", "port", "25", "comment", "mailfw"}},
	}, {
		name: "denies-are-prepended-hosts-without-length",
		changes: []plan.Change{
			add(rule(plan.IPv4, 25, "192.0.2.66/32", plan.Deny, "bad")),
			add(rule(plan.IPv6, 25, "2001:db8::/32", plan.Deny, "")),
		},
		want: [][]string{
			{"ufw", "prepend", "deny", "proto", "tcp", "from", "192.0.2.66", "to", "any", "port", "25", "comment", "mailfw: bad"},
			{"ufw", "prepend", "deny", "proto", "tcp", "from", "2001:db8::/32", "to", "any", "port", "25", "comment", "mailfw"},
		},
	}, {
		name: "pair-with-different-descriptions-stays-apart",
		changes: []plan.Change{
			add(rule(plan.IPv4, 587, "0.0.0.0/0", plan.Allow, "a")),
			add(rule(plan.IPv6, 587, "::/0", plan.Allow, "b")),
		},
		want: [][]string{
			{"ufw", "allow", "proto", "tcp", "from", "0.0.0.0/0", "to", "any", "port", "587", "comment", "mailfw: a"},
			{"ufw", "allow", "proto", "tcp", "from", "::/0", "to", "any", "port", "587", "comment", "mailfw: b"},
		},
	}, {
		name: "verdict-change-deletes-first-and-removal-is-free",
		v4:   []string{"allow tcp 25 0.0.0.0/0 any 192.0.2.66 in " + owned},
		changes: []plan.Change{
			add(rule(plan.IPv4, 25, "192.0.2.66/32", plan.Deny, "")),
			{Action: plan.Remove, Rule: rule(plan.IPv4, 25, "192.0.2.66/32", plan.Allow, ""),
				ID: "allow tcp 25 0.0.0.0/0 any 192.0.2.66 in"},
		},
		want: [][]string{
			{"ufw", "delete", "allow", "proto", "tcp", "from", "192.0.2.66", "to", "any", "port", "25", "comment", "mailfw"},
			{"ufw", "prepend", "deny", "proto", "tcp", "from", "192.0.2.66", "to", "any", "port", "25", "comment", "mailfw"},
			nil,
		},
	}, {
		name: "update-keeps-the-action",
		v4:   []string{"reject tcp 25 0.0.0.0/0 any 192.0.2.0/24 in " + owned},
		changes: []plan.Change{{Action: plan.Update, Rule: rule(plan.IPv4, 25, "192.0.2.0/24", plan.Deny, "it's new"),
			ID: "reject tcp 25 0.0.0.0/0 any 192.0.2.0/24 in"}},
		want: [][]string{{"ufw", "reject", "proto", "tcp", "from", "192.0.2.0/24", "to", "any", "port", "25",
			"comment", "mailfw: it’s new"}},
	}, {
		name: "removal-pair-is-one-call",
		v4:   []string{"allow tcp 465 0.0.0.0/0 any 0.0.0.0/0 in " + owned},
		v6:   []string{"allow tcp 465 ::/0 any ::/0 in " + owned},
		changes: []plan.Change{
			{Action: plan.Remove, Rule: rule(plan.IPv4, 465, "0.0.0.0/0", plan.Allow, ""),
				ID: "allow tcp 465 0.0.0.0/0 any 0.0.0.0/0 in"},
			{Action: plan.Remove, Rule: rule(plan.IPv6, 465, "::/0", plan.Allow, ""),
				ID: "allow tcp 465 ::/0 any ::/0 in"},
		},
		want: [][]string{{"ufw", "delete", "allow", "proto", "tcp", "to", "any", "port", "465", "comment", "mailfw"}},
	}, {
		name: "already-there-needs-no-call",
		v6:   []string{"allow tcp 25 ::/0 any 2001:db8::7 in " + owned},
		changes: []plan.Change{
			add(rule(plan.IPv6, 25, "2001:db8::7/128", plan.Allow, "")),
			{Action: plan.Remove, Rule: rule(plan.IPv6, 26, "2001:db8::7/128", plan.Allow, ""),
				ID: "allow tcp 26 ::/0 any 2001:db8::7 in"},
		},
		want: [][]string{nil, nil},
	}, {
		name:    "unmarked-same-match-is-refused",
		v4:      []string{"allow tcp 25 0.0.0.0/0 any 192.0.2.66 in"},
		changes: []plan.Change{add(rule(plan.IPv4, 25, "192.0.2.66/32", plan.Deny, ""))},
		err:     "unmarked rule with the same match",
	}, {
		name: "unmarked-removal-is-refused",
		v4:   []string{"allow tcp 25 0.0.0.0/0 any 192.0.2.66 in"},
		changes: []plan.Change{{Action: plan.Remove, Rule: rule(plan.IPv4, 25, "192.0.2.66/32", plan.Allow, ""),
			ID: "allow tcp 25 0.0.0.0/0 any 192.0.2.66 in"}},
		err: "lacks the mailfw mark",
	}, {
		name: "multiport-piece-is-refused",
		v4:   []string{"allow tcp 25,587 0.0.0.0/0 any 10.0.0.0/8 in " + owned},
		changes: []plan.Change{{Action: plan.Remove, Rule: rule(plan.IPv4, 25, "10.0.0.0/8", plan.Allow, ""),
			ID: "allow tcp 25,587 0.0.0.0/0 any 10.0.0.0/8 in#25"}},
		err: "multi-port",
	}, {
		name:    "cloud-ref-is-refused",
		changes: []plan.Change{add(plan.Rule{Family: plan.FamilyAny, Protocol: "tcp", Port: 25, Source: "sg-1", Verdict: plan.Allow})},
		err:     "cloud reference",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New()
			steps, err := b.plan(configOf(t, tt.v4, tt.v6), tt.changes)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			n := 0
			for _, s := range steps {
				got = append(got, s.argv)
				n += len(s.changes)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("argv of the steps (-want +got):\n%s", d)
			}
			if n != len(tt.changes) {
				t.Errorf("steps complete %d changes, want %d", n, len(tt.changes))
			}
		})
	}
}
