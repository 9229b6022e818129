package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// obs builds an Observed from a compact spec: "allow ipv4 tcp 25-25 0.0.0.0/0".
func obs(spec string, mods ...func(*Observed)) Observed {
	f := strings.Fields(spec)
	o := Observed{Verdict: Verdict(f[0]), Family: Family(f[1]), Protocol: f[2], Source: f[4]}
	lo, hi, ok := strings.Cut(f[3], "-")
	o.PortFrom = atoi(lo)
	o.PortTo = o.PortFrom
	if ok {
		o.PortTo = atoi(hi)
	}
	o.ID = spec
	for _, m := range mods {
		m(&o)
	}
	return o
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func owned(desc string) func(*Observed) {
	return func(o *Observed) { o.Owned, o.Description = true, desc }
}
func order(n int) func(*Observed) { return func(o *Observed) { o.Order = n } }
func conditional(o *Observed)     { o.Conditional = true }
func fixed(o *Observed)           { o.Fixed = true }

func rule(spec string) Rule {
	o := obs(spec)
	return Rule{Family: o.Family, Protocol: o.Protocol, Port: o.PortFrom, Source: o.Source, Verdict: o.Verdict}
}

func withDesc(r Rule, d string) Rule { r.Description = d; return r }

var allCaps = Capabilities{Deny: true, Limit: true, IPv6: true}

// changeLines renders changes as "+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)" lines.
func changeLines(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Action.Symbol()+" "+c.Rule.String()+" ("+string(c.Reason)+")")
	}
	return out
}

func findingIDs(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, string(f.Severity)+" "+f.ID)
	}
	return out
}

func TestDiff(t *testing.T) {
	mx := []Rule{
		rule("allow ipv4 tcp 25 0.0.0.0/0"),
		rule("allow ipv6 tcp 25 ::/0"),
	}
	tests := []struct {
		name      string
		desired   []Rule
		rules     []Observed
		ownership Ownership
		scope     func(*Scope)
		wantCh    []string
		wantSat   int
		wantFind  []string
	}{
		{
			name:    "empty-host-adds-everything",
			desired: mx,
			wantCh: []string{
				"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)",
				"+ allow ipv6 tcp/25 from ::/0 (missing)",
			},
			wantFind: []string{},
		},
		{
			name:    "owned-equal-rules-mean-no-changes",
			desired: mx,
			rules: []Observed{
				obs("allow ipv4 tcp 25 0.0.0.0/0", owned("")),
				obs("allow ipv6 tcp 25 ::/0", owned("")),
			},
			wantCh:   []string{},
			wantFind: []string{},
		},
		{
			name:     "owned-rule-with-other-description-is-updated-not-replaced",
			desired:  []Rule{withDesc(rule("allow ipv4 tcp 587 203.0.113.0/24"), "office")},
			rules:    []Observed{obs("allow ipv4 tcp 587 203.0.113.0/24", owned("old text"))},
			wantCh:   []string{`~ allow ipv4 tcp/587 from 203.0.113.0/24 "office" (description)`},
			wantFind: []string{},
		},
		{
			name:    "owned-rule-no-longer-desired-is-removed-after-the-adds",
			desired: []Rule{rule("allow ipv4 tcp 587 203.0.113.0/24")},
			rules:   []Observed{obs("allow ipv4 tcp 587 198.51.100.0/24", owned(""))},
			wantCh: []string{
				"+ allow ipv4 tcp/587 from 203.0.113.0/24 (missing)",
				"- allow ipv4 tcp/587 from 198.51.100.0/24 (not_desired)",
			},
			wantFind: []string{},
		},
		{
			name:    "second-owned-copy-is-removed-as-duplicate",
			desired: []Rule{rule("allow ipv4 tcp 587 203.0.113.0/24")},
			rules: []Observed{
				obs("allow ipv4 tcp 587 203.0.113.0/24", owned("")),
				obs("allow ipv4 tcp 587 203.0.113.0/24", owned(""), func(o *Observed) { o.ID = "copy" }),
			},
			wantCh:   []string{"- allow ipv4 tcp/587 from 203.0.113.0/24 (duplicate)"},
			wantFind: []string{},
		},
		{
			name:     "unmarked-equal-rule-satisfies-without-duplicate",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			rules:    []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0")},
			wantCh:   []string{},
			wantSat:  1,
			wantFind: []string{"medium family-mismatch"},
		},
		{
			name:    "port-range-all-ports-and-all-protocols-grant-mail-ports",
			desired: []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0"), rule("allow ipv4 tcp 587 0.0.0.0/0"), rule("allow ipv6 tcp 465 ::/0")},
			rules: []Observed{
				obs("allow ipv4 tcp 20-30 0.0.0.0/0"),
				obs("allow ipv4 tcp 1-65535 0.0.0.0/0"),
				obs("allow ipv6 all 1-65535 ::/0"),
			},
			wantCh:   []string{},
			wantSat:  3,
			wantFind: []string{"high broad-rule", "high broad-rule", "low broad-rule"},
		},
		{
			name:     "wider-source-grants-a-narrow-desired-rule",
			desired:  []Rule{rule("allow ipv4 tcp 587 203.0.113.0/24")},
			rules:    []Observed{obs("allow ipv4 tcp 587 203.0.0.0/16")},
			wantCh:   []string{},
			wantSat:  1,
			wantFind: []string{"medium open-beyond-policy"},
		},
		{
			name:     "conditional-rule-does-not-satisfy",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			rules:    []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0", conditional)},
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"medium family-mismatch"},
		},
		{
			name:     "managed-leaves-unmarked-extra-rule-and-reports-it",
			desired:  []Rule{rule("allow ipv4 tcp 587 203.0.113.0/24")},
			rules:    []Observed{obs("allow ipv4 tcp 587 0.0.0.0/0"), obs("allow ipv4 tcp 587 203.0.113.0/24", owned(""))},
			wantCh:   []string{},
			wantFind: []string{"high open-beyond-policy", "medium family-mismatch"},
		},
		{
			name:      "exclusive-removes-unmarked-single-port-mail-rule",
			desired:   []Rule{rule("allow ipv4 tcp 587 203.0.113.0/24")},
			ownership: Exclusive,
			rules: []Observed{
				obs("allow ipv4 tcp 587 0.0.0.0/0"),
				obs("allow ipv4 tcp 22 0.0.0.0/0"),
				obs("allow ipv4 tcp 465 198.51.100.0/24", fixed),
				obs("deny ipv4 tcp 25 192.0.2.7/32"),
				obs("allow ipv4 tcp 1-1024 10.0.0.0/8"),
			},
			wantCh: []string{
				"+ allow ipv4 tcp/587 from 203.0.113.0/24 (missing)",
				"- allow ipv4 tcp/587 from 0.0.0.0/0 (exclusive)",
			},
			wantFind: []string{"medium broad-rule", "medium open-beyond-policy"},
		},
		{
			name:      "exclusive-keeps-the-unmarked-rule-that-satisfies",
			desired:   []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			ownership: Exclusive,
			rules:     []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0")},
			wantCh:    []string{},
			wantSat:   1,
			wantFind:  []string{"medium family-mismatch"},
		},
		{
			name:    "adds-come-before-updates-and-removals-and-denies-first",
			desired: []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0"), rule("deny ipv4 tcp 25 192.0.2.0/24"), withDesc(rule("allow ipv4 tcp 465 10.0.0.0/8"), "new")},
			rules:   []Observed{obs("allow ipv4 tcp 587 0.0.0.0/0", owned("")), obs("allow ipv4 tcp 465 10.0.0.0/8", owned("old"))},
			wantCh: []string{
				"+ deny ipv4 tcp/25 from 192.0.2.0/24 (missing)",
				"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)",
				`~ allow ipv4 tcp/465 from 10.0.0.0/8 "new" (description)`,
				"- allow ipv4 tcp/587 from 0.0.0.0/0 (not_desired)",
			},
			wantFind: []string{"medium family-mismatch"},
		},
		{
			name:     "allow-behind-a-catch-all-reject-is-dead",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			rules:    []Observed{obs("deny ipv4 all 1-65535 0.0.0.0/0", order(10))},
			scope:    func(s *Scope) { s.AllowOrder = 20 },
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"high dead-allow", "medium family-mismatch"},
		},
		{
			name:     "allow-placed-before-the-catch-all-is-live",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			rules:    []Observed{obs("deny ipv4 all 1-65535 0.0.0.0/0", order(10))},
			scope:    func(s *Scope) { s.AllowOrder = 5 },
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"medium family-mismatch"},
		},
		{
			name:     "a-ban-of-one-address-does-not-make-a-world-allow-dead",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			rules:    []Observed{obs("deny ipv4 tcp 25 192.0.2.7/32", order(1))},
			scope:    func(s *Scope) { s.AllowOrder = 5 },
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"medium family-mismatch"},
		},
		{
			name:     "unmarked-allow-behind-a-drop-does-not-satisfy",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			rules:    []Observed{obs("deny ipv4 tcp 25 0.0.0.0/0", order(1)), obs("allow ipv4 tcp 25 0.0.0.0/0", order(2))},
			scope:    func(s *Scope) { s.AllowOrder = 0 },
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"medium family-mismatch", "low dead-allow"},
		},
		{
			name:     "a-ban-after-an-allow-does-not-ban",
			desired:  mx,
			rules:    []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0", owned(""), order(5)), obs("allow ipv6 tcp 25 ::/0", owned(""), order(6)), obs("deny ipv4 all 1-65535 192.0.2.7/32", order(9))},
			wantCh:   []string{},
			wantFind: []string{"medium dead-deny"},
		},
		{
			name:     "a-ban-after-where-mailfw-will-add-an-allow-is-reported",
			desired:  mx[:1],
			rules:    []Observed{obs("deny ipv4 tcp 25 192.0.2.7/32", order(9)), obs("allow ipv6 tcp 25 ::/0")},
			scope:    func(s *Scope) { s.AllowOrder = 5 },
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"high open-beyond-policy", "medium dead-deny"},
		},
		{
			name:     "a-ban-before-the-allows-holds",
			desired:  mx[:1],
			rules:    []Observed{obs("deny ipv4 tcp 25 192.0.2.7/32", order(1)), obs("allow ipv6 tcp 25 ::/0")},
			scope:    func(s *Scope) { s.AllowOrder = 5 },
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"high open-beyond-policy"},
		},
		{
			name:     "ipv4-open-to-all-but-ipv6-not",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"medium family-mismatch"},
		},
		{
			name:     "unmarked-ipv6-rule-closes-the-family-gap",
			desired:  []Rule{rule("allow ipv4 tcp 25 0.0.0.0/0")},
			rules:    []Observed{obs("allow ipv6 tcp 25 ::/0")},
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)"},
			wantFind: []string{"high open-beyond-policy"},
		},
		{
			name:     "duplicate-unmarked-rules-are-reported",
			desired:  mx,
			rules:    []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0"), obs("allow ipv4 tcp 25 0.0.0.0/0", func(o *Observed) { o.ID = "b" }), obs("allow ipv6 tcp 25 ::/0")},
			wantCh:   []string{},
			wantSat:  2,
			wantFind: []string{"low duplicate-rule"},
		},
		{
			name:     "marked-range-rule-is-reported-never-removed",
			desired:  mx,
			rules:    []Observed{obs("allow ipv4 tcp 20-600 0.0.0.0/0", owned("")), obs("allow ipv6 all 1-65535 ::/0", owned(""))},
			wantCh:   []string{"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)", "+ allow ipv6 tcp/25 from ::/0 (missing)"},
			wantFind: []string{"high marked-broad-rule", "high marked-broad-rule"},
		},
		{
			name:    "marked-rule-not-in-force-is-replaced",
			desired: mx[:1],
			rules:   []Observed{obs("allow ipv4 tcp 25 0.0.0.0/0", owned(""), conditional)},
			wantCh: []string{
				"+ allow ipv4 tcp/25 from 0.0.0.0/0 (missing)", "- allow ipv4 tcp/25 from 0.0.0.0/0 (not_desired)",
			},
			wantFind: []string{"medium family-mismatch"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := Scope{ID: "INPUT", Rules: tc.rules}
			if tc.scope != nil {
				tc.scope(&sc)
			}
			st := &State{Kind: "test", IPv6: true, Scopes: []Scope{sc}}
			tp, err := Diff(tc.desired, st, allCaps, DiffOptions{Ownership: tc.ownership})
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			if d := cmp.Diff(tc.wantCh, changeLines(tp.Changes)); d != "" {
				t.Errorf("changes (-want +got):\n%s", d)
			}
			if len(tp.Satisfied) != tc.wantSat {
				t.Errorf("satisfied = %d, want %d: %+v", len(tp.Satisfied), tc.wantSat, tp.Satisfied)
			}
			if d := cmp.Diff(tc.wantFind, findingIDs(tp.Findings)); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
				for _, f := range tp.Findings {
					t.Log(f.Message)
				}
			}
		})
	}
}
