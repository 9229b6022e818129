package firewalld

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
)

func benchChanges(n int) []plan.Change {
	cs := make([]plan.Change, n)
	for i := range cs {
		cs[i] = plan.Change{Action: plan.Add, Reason: plan.ReasonMissing, Scope: ScopeID,
			Rule: plan.Rule{Family: plan.IPv4, Protocol: "tcp", Port: 587,
				Source: fmt.Sprintf("203.0.113.%d/32", i+1), Verdict: plan.Allow}}
	}
	return cs
}

func removals(cs []plan.Change) []plan.Change {
	out := make([]plan.Change, len(cs))
	for i, c := range cs {
		text, _ := renderRule(c.Rule)
		out[i] = plan.Change{Action: plan.Remove, Rule: c.Rule, Reason: plan.ReasonNotDesired,
			Scope: ScopeID, ID: ownedID(AllowPolicy, text)}
	}
	return out
}

// BenchmarkApply20Rules compares one Apply of 20 allow rules (runtime and
// permanent) with the per-rule firewall-cmd loop doing the same work, in
// one sandboxed firewalld.
func BenchmarkApply20Rules(b *testing.B) {
	fw := sandbox.NewFirewalld(b, sandbox.NewNetns(b))
	log := slog.New(slog.DiscardHandler)
	runner := execx.New(log, execx.WithPrefix(fw.Prefix()...))
	be := New(WithRunner(runner), WithLogger(log))
	ctx := context.Background()
	// The first apply creates the policies (and reloads); it is not measured.
	seed := []plan.Change{{Action: plan.Add, Reason: plan.ReasonMissing, Scope: ScopeID,
		Rule: plan.Rule{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "0.0.0.0/0", Verdict: plan.Allow}}}
	if _, err := be.Apply(ctx, seed); err != nil {
		b.Fatal(err)
	}
	adds := benchChanges(20)

	for _, mode := range []string{"apply-after-read", "apply-cold"} {
		b.Run(mode, func(b *testing.B) {
			var calls int64
			for b.Loop() {
				if mode == "apply-after-read" {
					// The CLI plans (reads) right before it applies.
					b.StopTimer()
					if _, err := be.Read(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				before := runner.Calls()
				if _, err := be.Apply(ctx, adds); err != nil {
					b.Fatal(err)
				}
				calls += runner.Calls() - before
				b.StopTimer()
				if _, err := be.Apply(ctx, removals(adds)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
		})
	}

	// The scale: what one firewall-cmd call costs on this machine now.
	b.Run("one-firewall-cmd-call", func(b *testing.B) {
		for b.Loop() {
			fw.Cmd("--state")
		}
		b.ReportMetric(1, "calls/op")
	})

	b.Run("per-rule-firewall-cmd", func(b *testing.B) {
		for b.Loop() {
			for _, c := range adds {
				text, _ := renderRule(c.Rule)
				fw.Cmd("--policy="+AllowPolicy, "--add-rich-rule="+text)
				fw.Cmd("--permanent", "--policy="+AllowPolicy, "--add-rich-rule="+text)
			}
			b.StopTimer()
			if _, err := be.Apply(ctx, removals(adds)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(2*len(adds)), "calls/op")
	})
}
