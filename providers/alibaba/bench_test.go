package alibaba

import (
	"context"
	"testing"
	"time"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

const benchGroups = 500

// benchFixture is 500 groups behind an emulator that answers every call
// after 20 ms, read and written at the default parallelism.
func benchFixture(b *testing.B) (*fixture, plan.Target, *Backend) {
	f := newFixture(b)
	ids := make([]string, benchGroups)
	for i := range ids {
		ids[i] = f.group(b, map[string]string{"role": "mx"})
	}
	f.emu.SetLatency(20 * time.Millisecond)
	tg := f.target(ids...)
	return f, tg, f.open(b, tg, providers.Env{})
}

func reportCalls(b *testing.B, f *fixture, ops int) {
	for action, n := range f.emu.CallCounts() {
		b.ReportMetric(float64(n)/float64(ops), action+"/op")
	}
}

func BenchmarkPlan500Groups(b *testing.B) {
	f, tg, be := benchFixture(b)
	p := mustPolicy(b, mxPolicy)
	f.emu.ResetRequests()
	ops := 0
	for b.Loop() {
		tp, err := plan.PlanTarget(context.Background(), p, tg, be)
		if err != nil || len(tp.Changes) != 4*benchGroups {
			b.Fatalf("plan: %d changes, %v", len(tp.Changes), err)
		}
		ops++
	}
	reportCalls(b, f, ops)
	b.ReportMetric(float64(f.emu.MaxInFlight()), "max-in-flight")
}

func BenchmarkApplyOneRulePerGroup500Groups(b *testing.B) {
	f, tg, be := benchFixture(b)
	changes := make([]plan.Change, len(tg.SecurityGroups))
	for i, id := range tg.SecurityGroups {
		changes[i] = plan.Change{Action: plan.Add, Reason: plan.ReasonMissing, Scope: id + " (" + testRegion + ")",
			Rule: plan.Rule{Family: plan.IPv4, Protocol: "tcp", Port: 25, Source: "0.0.0.0/0", Verdict: plan.Allow}}
	}
	var calls map[string]int
	for b.Loop() {
		b.StopTimer()
		for _, id := range tg.SecurityGroups {
			for _, r := range f.emu.IngressRules(id) {
				f.emu.RemoveRule(id, r.ID)
			}
		}
		f.emu.ResetRequests()
		b.StartTimer()
		done, err := be.Apply(context.Background(), changes)
		if err != nil || len(done) != benchGroups {
			b.Fatalf("apply: %d done, %v", len(done), err)
		}
		calls = f.emu.CallCounts()
	}
	b.ReportMetric(float64(f.emu.MaxInFlight()), "max-in-flight")
	for action, n := range calls {
		b.ReportMetric(float64(n), action+"/op")
	}
}
