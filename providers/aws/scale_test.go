package aws_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailfw/mailfw/internal/ec2emu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

var benchRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2"}

// seedFleet creates n tagged groups spread over the regions, each with
// rulesPer inbound rules besides its default egress rule.
func seedFleet(tb testing.TB, emu *ec2emu.Server, n, rulesPer int) {
	tb.Helper()
	mx := []ec2emu.Tag{{Key: "role", Value: "mx"}}
	for i := range n {
		region := benchRegions[i%len(benchRegions)]
		g := emu.SeedGroup(region, ec2emu.Group{Tags: mx})
		for j := range rulesPer {
			if _, err := emu.SeedRule(region, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
				FromPort: 25, ToPort: 25, CIDRv4: fmt.Sprintf("192.0.2.%d/32", j)}); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

const fleetPolicy = `version: 1
allow:
  - port: smtp
    from: [198.51.100.0/24]
targets:
  - name: fleet
    type: aws
    regions: [us-east-1, eu-west-1, ap-southeast-2]
    select: {tags: {role: mx}}
    endpoint: "{{URL}}"
`

func TestRead_callsGrowWithPagesOfRulesNotGroups(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	tests := []struct {
		name                  string
		groups, rulesPer      int
		wantGroups, wantRules int
	}{
		// 334/333/333 groups a region, 2 rules each with egress: two chunks
		// of at most 200 groups a region, each one page.
		{"1000-groups-1-rule", 1000, 1, 3, 6},
		// Same groups, 9 rules each with egress: 1800 rules for a 200-group
		// chunk and about 1200 for the rest of a region, two pages each.
		{"1000-groups-8-rules", 1000, 8, 3, 6 + 6},
		{"30-groups-1-rule", 30, 1, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmu(t)
			seedFleet(t, emu, tt.groups, tt.rulesPer)
			p, tgt := loadPolicy(t, emu, fleetPolicy)
			b := open(t, tgt, providers.Env{})
			tp := planOf(t, p, tgt, b)
			if n := countActions(tp.Changes)[plan.Add]; n != tt.groups {
				t.Fatalf("%d adds, want one per group", n)
			}
			got := [2]int{emu.Calls("DescribeSecurityGroups"), emu.Calls("DescribeSecurityGroupRules")}
			if want := [2]int{tt.wantGroups, tt.wantRules}; got != want {
				t.Fatalf("DescribeSecurityGroups, DescribeSecurityGroupRules calls = %v, want %v", got, want)
			}
			if n := emu.Calls(""); n != got[0]+got[1] {
				t.Fatalf("%d calls in all, want only the two listings", n)
			}
		})
	}
}

func BenchmarkPlan1000Groups3Regions(b *testing.B) {
	isolateAWSEnv(b, testKey, testSecret)
	emu := newEmu(b)
	seedFleet(b, emu, 1000, 1)
	emu.SetLatency(20 * time.Millisecond)
	p, tgt := loadPolicy(b, emu, fleetPolicy)
	be := open(b, tgt, providers.Env{Parallelism: 10})
	emu.ClearRequests()
	b.ResetTimer()
	for b.Loop() {
		if _, err := plan.PlanTarget(context.Background(), p, tgt, be); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(emu.Calls(""))/float64(b.N), "calls/op")
}

func BenchmarkApplyOneRuleTo1000Groups(b *testing.B) {
	isolateAWSEnv(b, testKey, testSecret)
	emu := newEmu(b)
	seedFleet(b, emu, 1000, 1)
	p, tgt := loadPolicy(b, emu, fleetPolicy)
	be := open(b, tgt, providers.Env{Parallelism: 10})
	calls := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		emu.SetLatency(0)
		removeAdded(b, emu)
		tp := planOf(b, p, tgt, be)
		emu.SetLatency(20 * time.Millisecond)
		emu.ClearRequests()
		b.StartTimer()
		done, err := be.Apply(context.Background(), tp.Changes)
		if err != nil || len(done) != 1000 {
			b.Fatalf("apply: %d done, %v", len(done), err)
		}
		calls += emu.Calls("")
	}
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
}

// removeAdded takes out what a previous apply added, so each iteration
// starts from the same state.
func removeAdded(tb testing.TB, emu *ec2emu.Server) {
	for _, region := range benchRegions {
		for _, g := range emu.Groups(region) {
			for _, r := range emu.IngressRules(region, g.ID) {
				if r.CIDRv4 == "198.51.100.0/24" {
					if err := emu.RemoveRule(region, r.ID); err != nil {
						tb.Fatal(err)
					}
				}
			}
		}
	}
}

// BenchmarkApplyReplaceOneRuleIn1000Groups adds one rule to each group and
// removes the marked one it replaces: the removals are re-checked with one
// DescribeSecurityGroupRules per 200 groups, not one per group.
func BenchmarkApplyReplaceOneRuleIn1000Groups(b *testing.B) {
	isolateAWSEnv(b, testKey, testSecret)
	emu := newEmu(b)
	seedFleet(b, emu, 1000, 0)
	p, tgt := loadPolicy(b, emu, fleetPolicy)
	be := open(b, tgt, providers.Env{Parallelism: 10})
	calls, rechecks := 0, 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		emu.SetLatency(0)
		removeAdded(b, emu)
		for _, region := range benchRegions {
			for _, g := range emu.Groups(region) {
				if len(emu.IngressRules(region, g.ID)) == 0 {
					if _, err := emu.SeedRule(region, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 25,
						ToPort: 25, CIDRv4: "192.0.2.1/32", Description: "mailfw: old relay"}); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		tp := planOf(b, p, tgt, be)
		emu.SetLatency(20 * time.Millisecond)
		emu.ClearRequests()
		b.StartTimer()
		done, err := be.Apply(context.Background(), tp.Changes)
		if err != nil || len(done) != 2000 {
			b.Fatalf("apply: %d done, %v", len(done), err)
		}
		calls += emu.Calls("")
		rechecks += emu.Calls("DescribeSecurityGroupRules")
	}
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
	b.ReportMetric(float64(rechecks)/float64(b.N), "rechecks/op")
}
