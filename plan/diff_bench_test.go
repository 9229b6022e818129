package plan

import (
	"fmt"
	"testing"
)

// BenchmarkDiff3000 diffs a policy of 3000 single-source rules against a
// state that already holds them, plus the rules a busy host has around them.
func BenchmarkDiff3000(b *testing.B) {
	var desired []Rule
	var rules []Observed
	for i := range 3000 {
		src := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		desired = append(desired, Rule{Family: IPv4, Protocol: "tcp", Port: 25, Source: src, Verdict: Allow})
		rules = append(rules, Observed{ID: src, Family: IPv4, Protocol: "tcp", PortFrom: 25, PortTo: 25,
			Source: src, Verdict: Allow, Owned: true, Order: 100000 + i})
	}
	for i := range 200 {
		rules = append(rules, Observed{ID: fmt.Sprint("ban", i), Family: IPv4, Protocol: "tcp", PortFrom: 25, PortTo: 25,
			Source: fmt.Sprintf("192.0.%d.%d/32", i/256, i%256), Verdict: Deny, Order: i})
	}
	rules = append(rules, Observed{ID: "ssh", Family: IPv4, Protocol: "tcp", PortFrom: 22, PortTo: 22,
		Source: "0.0.0.0/0", Verdict: Allow, Order: 500})
	st := &State{IPv6: true, Scopes: []Scope{{ID: "INPUT", Rules: rules, AllowOrder: 100000, DenyOrder: 100000}}}
	b.ResetTimer()
	for b.Loop() {
		tp, err := Diff(desired, st, Capabilities{Deny: true, IPv6: true}, DiffOptions{})
		if err != nil || len(tp.Changes) != 0 {
			b.Fatalf("changes %d, err %v", len(tp.Changes), err)
		}
	}
}
