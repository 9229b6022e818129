package iptables

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
)

// benchHost is a namespace with a counting runner and a policy of n allows.
type benchHost struct {
	ns     *sandbox.Netns
	runner *execx.Runner
	p      *plan.Policy
}

func newBenchHost(b *testing.B, n int) *benchHost {
	b.Helper()
	sandbox.Require(b, "iptables-nft-save", "iptables-nft-restore", "iptables-nft")
	h := &benchHost{ns: sandbox.NewNetns(b)}
	h.runner = execx.New(slog.New(slog.DiscardHandler), execx.WithPrefix(h.ns.Prefix()...))
	dir := b.TempDir()
	var list strings.Builder
	for i := range n {
		fmt.Fprintf(&list, "10.%d.%d.0/24\n", i/256, i%256)
	}
	if err := os.WriteFile(filepath.Join(dir, "clients.txt"), []byte(list.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	p, err := plan.ParsePolicy(filepath.Join(dir, "policy.yaml"), []byte(`version: 1
sources:
  clients: {file: clients.txt}
allow:
  - port: smtp
    from: [clients]
    description: bench
targets:
  - name: host
    type: iptables
`))
	if err != nil {
		b.Fatal(err)
	}
	h.p = p
	return h
}

func (h *benchHost) backend() *Backend {
	return New(WithRunner(h.runner), WithLogger(slog.New(slog.DiscardHandler)), WithMode(ModeNFT))
}

// reset empties the filter table.
func (h *benchHost) reset(b *testing.B) {
	b.Helper()
	_, err := h.runner.Run(context.Background(),
		[]byte("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"),
		"iptables-nft-restore")
	if err != nil {
		b.Fatal(err)
	}
}

// changes is the plan against an empty table.
func (h *benchHost) changes(b *testing.B) []plan.Change {
	b.Helper()
	h.reset(b)
	tp, err := plan.PlanTarget(context.Background(), h.p, h.p.Targets[0], h.backend())
	if err != nil {
		b.Fatal(err)
	}
	return tp.Changes
}

// ruleArgs are the native rules the changes become, in chain order.
func ruleArgs(cs []plan.Change) [][]string {
	var out [][]string
	for _, c := range cs {
		out = append(out, allowArgs(c.Rule))
	}
	return out
}

func benchApply(b *testing.B, n int) {
	h := newBenchHost(b, n)
	cs := h.changes(b)
	if len(cs) != n {
		b.Fatalf("plan has %d changes, want %d", len(cs), n)
	}
	args := ruleArgs(cs)
	var restoreInput strings.Builder
	restoreInput.WriteString("*filter\n:" + Chain + " - [0:0]\n")
	for _, a := range args {
		restoreInput.WriteString("-A " + Chain + " " + joinArgs(a) + "\n")
	}
	restoreInput.WriteString("-A INPUT " + joinArgs(jumpArgs) + "\nCOMMIT\n")
	ctx := context.Background()

	b.Run("backend", func(b *testing.B) {
		var execs int64
		for b.Loop() {
			b.StopTimer()
			h.reset(b)
			be := h.backend()
			before := h.runner.Calls()
			b.StartTimer()
			done, err := be.Apply(ctx, cs)
			if err != nil || len(done) != n {
				b.Fatalf("apply: %d done, %v", len(done), err)
			}
			execs += h.runner.Calls() - before
		}
		b.ReportMetric(float64(execs)/float64(b.N), "execs/op")
	})
	b.Run("bare-restore", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			h.reset(b)
			b.StartTimer()
			if _, err := h.runner.Run(ctx, []byte(restoreInput.String()), "iptables-nft-restore", "--noflush"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(1, "execs/op")
	})
	b.Run("per-rule", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			h.reset(b)
			if _, err := h.runner.Run(ctx, nil, "iptables-nft", "-w", "-N", Chain); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for _, a := range args {
				if _, err := h.runner.Run(ctx, nil, "iptables-nft", append([]string{"-w", "-A", Chain}, a...)...); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := h.runner.Run(ctx, nil, "iptables-nft", append([]string{"-w", "-A", "INPUT"}, jumpArgs...)...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n+1), "execs/op")
	})
}

// BenchmarkApply20 applies 20 allows through the backend, as one bare
// iptables-restore, and as one iptables call per rule.
func BenchmarkApply20(b *testing.B) { benchApply(b, 20) }

// BenchmarkApply3000 is the same with 3000 allows from a {file: ...} source.
func BenchmarkApply3000(b *testing.B) { benchApply(b, 3000) }

// BenchmarkPlan3000 reads 3000 existing rules and diffs them against the
// policy that made them.
func BenchmarkPlan3000(b *testing.B) {
	h := newBenchHost(b, 3000)
	cs := h.changes(b)
	if _, err := h.backend().Apply(context.Background(), cs); err != nil {
		b.Fatal(err)
	}
	be := h.backend()
	ctx := context.Background()
	b.Run("plan", func(b *testing.B) {
		before := h.runner.Calls()
		for b.Loop() {
			tp, err := plan.PlanTarget(ctx, h.p, h.p.Targets[0], be)
			if err != nil || len(tp.Changes) != 0 {
				b.Fatalf("plan: %d changes, %v", len(tp.Changes), err)
			}
		}
		b.ReportMetric(float64(h.runner.Calls()-before)/float64(b.N), "execs/op")
	})
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("diff", func(b *testing.B) {
		st, err := be.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		desired, err := h.p.Desired(h.p.Targets[0], be.Capabilities())
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := plan.Diff(desired, st, be.Capabilities(), plan.DiffOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare-save", func(b *testing.B) {
		for b.Loop() {
			if _, err := h.runner.Run(ctx, nil, "iptables-nft-save", "-t", "filter"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
