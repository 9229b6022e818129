package iptables

import (
	"github.com/mailfw/mailfw/internal/golden"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/plan"
)

func TestPlan2txn_writesOneTransaction(t *testing.T) {
	add := func(port int, src string, v plan.Verdict, limit int) plan.Change {
		r := plan.Rule{Family: plan.IPv4, Protocol: "tcp", Port: port, Source: src, Verdict: v,
			Description: "new"}
		if limit > 0 {
			r.Limit = &plan.Limit{ConnectionsPerSource: limit}
		}
		return plan.Change{Action: plan.Add, Rule: r, Scope: ScopeID}
	}
	tests := []struct {
		name    string
		file    string
		changes []plan.Change
	}{
		{"dead-jump-moves", "f2b-legacy-v4.txt", []plan.Change{add(465, "198.51.100.0/24", plan.Allow, 3)}},
		{"mixed-remove-and-add", "mixed-nft-v4.txt", []plan.Change{
			add(587, "0.0.0.0/0", plan.Allow, 0),
			add(25, "192.0.2.0/28", plan.Deny, 0),
			{Action: plan.Remove, Scope: ScopeID, ID: "ipv4: -p tcp -m tcp --dport 25 -m comment --comment mailfw -j ACCEPT"},
		}},
		{"empty-host", "empty-nft-v4.txt", []plan.Change{add(25, "0.0.0.0/0", plan.Allow, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := plan2txn(readTable(t, tt.file, plan.IPv4), tt.changes)
			if err != nil {
				t.Fatal(err)
			}
			if len(tx.done) != len(tt.changes) {
				t.Errorf("%d of %d changes done", len(tx.done), len(tt.changes))
			}
			golden.Check(t, "txn-"+tt.name+".restore", string(tx.input))
		})
	}
}

func TestPlan2txn_refusesRulesOutsideItsChain(t *testing.T) {
	tb := readTable(t, "mixed-nft-v4.txt", plan.IPv4)
	_, err := plan2txn(tb, []plan.Change{{Action: plan.Remove, Scope: ScopeID,
		ID: "ipv4 INPUT: -p tcp -m tcp --dport 22 -j ACCEPT"}})
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("removing an INPUT rule: err = %v", err)
	}
}

func TestPlan2txn_nothingToDoWritesNothing(t *testing.T) {
	tb := readTable(t, "mixed-nft-v6.txt", plan.IPv6)
	tx, err := plan2txn(tb, []plan.Change{{Action: plan.Add, Scope: ScopeID, Rule: plan.Rule{
		Family: plan.IPv6, Protocol: "tcp", Port: 25, Source: "::/0", Verdict: plan.Allow}}})
	if err != nil || tx.input != nil {
		t.Errorf("re-adding an existing rule: input %q, err %v", tx.input, err)
	}
}

func TestCheckChange_refusesWhatIptablesCannotHold(t *testing.T) {
	for _, r := range []plan.Rule{
		{Family: plan.FamilyAny, Protocol: "tcp", Port: 25, Source: "sg-1", Verdict: plan.Allow},
		{Family: plan.IPv4, Protocol: "udp", Port: 25, Source: "0.0.0.0/0", Verdict: plan.Allow},
		{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "::/0", Verdict: plan.Allow},
		{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "0.0.0.0/0", Verdict: plan.Deny,
			Limit: &plan.Limit{ConnectionsPerSource: 3}},
	} {
		if err := checkChange(plan.Change{Action: plan.Add, Rule: r, Scope: ScopeID}); err == nil {
			t.Errorf("%s was accepted", r)
		}
	}
}
