package alibaba

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mailfw/mailfw/internal/ecsemu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

func planOf(t *testing.T, p *plan.Policy, tg plan.Target, b *Backend) plan.TargetPlan {
	t.Helper()
	tp, err := plan.PlanTarget(context.Background(), p, tg, b)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return tp
}

func apply(t *testing.T, b *Backend, cs []plan.Change) []plan.Change {
	t.Helper()
	done, err := b.Apply(context.Background(), cs)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return done
}

// ruleLines renders a group's ingress rules as sorted text.
func ruleLines(f *fixture, gid string) []string {
	var out []string
	for _, r := range f.emu.IngressRules(gid) {
		src := r.SourceCidrIp + r.Ipv6SourceCidrIp + r.SourceGroupId + r.SourcePrefixListId
		out = append(out, fmt.Sprintf("%s %s %s from %s prio %d nic %s %q",
			r.Policy, r.IpProtocol, r.PortRange, src, r.Priority, r.NicType, r.Description))
	}
	sort.Strings(out)
	return out
}

func TestPlanApply_emptyGroupConvergesAndSecondPlanIsEmpty(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	tg := f.target(gid)
	var progress bytes.Buffer
	b := f.open(t, tg, providers.Env{Progress: &progress})
	p := mustPolicy(t, mxPolicy)

	tp := planOf(t, p, tg, b)
	if len(tp.Changes) != 4 {
		t.Fatalf("plan on an empty group: %d changes, want 4: %+v", len(tp.Changes), tp.Changes)
	}
	if !hasFinding(tp, FindingOutbound25) {
		t.Errorf("plan lacks the %s finding: %+v", FindingOutbound25, tp.Findings)
	}
	readCalls := map[string]int{"DescribeSecurityGroups": 1, "DescribeSecurityGroupAttribute": 1}
	if diff := cmp.Diff(readCalls, f.emu.CallCounts()); diff != "" {
		t.Errorf("plan calls (-want +got):\n%s", diff)
	}

	f.emu.ResetRequests()
	done := apply(t, b, tp.Changes)
	if diff := cmp.Diff(tp.Changes, done); diff != "" {
		t.Errorf("done (-planned +done):\n%s", diff)
	}
	applyCalls := map[string]int{"DescribeSecurityGroups": 1, "AuthorizeSecurityGroup": 1,
		"DescribeSecurityGroupAttribute": 1}
	if diff := cmp.Diff(applyCalls, f.emu.CallCounts()); diff != "" {
		t.Errorf("apply calls (-want +got):\n%s", diff)
	}
	want := []string{
		`accept TCP 25/25 from 0.0.0.0/0 prio 1 nic intranet "mailfw"`,
		`accept TCP 25/25 from ::/0 prio 1 nic intranet "mailfw"`,
		`accept TCP 587/587 from 2001:db8:10::/48 prio 1 nic intranet "mailfw: office clients"`,
		`accept TCP 587/587 from 203.0.113.0/24 prio 1 nic intranet "mailfw: office clients"`,
	}
	if diff := cmp.Diff(want, ruleLines(f, gid)); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	auth := lastRequest(f, "AuthorizeSecurityGroup")
	if auth.Get("Permissions.4.PortRange") == "" || auth.Get("Permissions.5.PortRange") != "" ||
		auth.Get("Permissions.1.Priority") != "1" {
		t.Errorf("authorize wire parameters: %v", auth)
	}

	f.emu.ResetRequests()
	if tp2 := planOf(t, p, tg, b); len(tp2.Changes) != 0 {
		t.Errorf("second plan: %+v", tp2.Changes)
	}
	if diff := cmp.Diff(readCalls, f.emu.CallCounts()); diff != "" {
		t.Errorf("second plan calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(progress.String(), "read 1/1 security groups") ||
		!strings.Contains(progress.String(), "applied 1/1 security groups") {
		t.Errorf("progress lines: %q", progress.String())
	}
}

func hasFinding(tp plan.TargetPlan, id string) bool {
	for _, f := range tp.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

func lastRequest(f *fixture, action string) url.Values {
	reqs := f.emu.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Action == action {
			return reqs[i].Params
		}
	}
	return nil
}

const partnerPolicy = `version: 1
sources:
  partner: [198.51.100.10]
allow:
  - port: smtp
    from: [partner]
    description: partner relay
targets:
  - name: cn
    type: alibaba
    region: cn-hangzhou
    security_groups: [sg-bp1placeholder]
`

func TestPlan_dropAtEqualOrBetterPriorityRefusesTheAllow(t *testing.T) {
	tests := []struct {
		name       string
		dropPrio   int
		targetPrio int
		wantErr    bool
	}{
		{"equal-priority-drop-wins", 1, 1, true},
		{"better-priority-drop", 1, 5, true},
		{"worse-priority-drop", 5, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			gid := f.group(t, nil)
			f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "198.51.100.0/24",
				Policy: "drop", Priority: tc.dropPrio, Description: "block lab"})
			tg := f.target(gid)
			tg.Priority = tc.targetPrio
			b := f.open(t, tg, providers.Env{})
			_, err := plan.PlanTarget(context.Background(), mustPolicy(t, partnerPolicy), tg, b)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "198.51.100.10/32") {
					t.Fatalf("want an error naming the partner relay as dead, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the allow at a better priority is live, yet: %v", err)
			}
		})
	}
}

func TestRead_selectsByTagsAndVPC(t *testing.T) {
	f := newFixture(t)
	want := map[string]bool{}
	for i := 0; i < 130; i++ {
		tags := map[string]string{"role": "mx", "env": "prod"}
		if i%3 == 0 {
			tags["env"] = "staging"
		}
		id := f.group(t, tags)
		if i%3 != 0 {
			want[id+" ("+testRegion+")"] = true
		}
	}
	other, _ := f.emu.AddGroup(ecsemu.Group{Region: testRegion, VpcID: "vpc-bp1othervpc00001",
		Tags: map[string]string{"role": "mx", "env": "prod"}})
	f.emu.AddGroup(ecsemu.Group{Region: "cn-beijing", VpcID: testVPC, Tags: map[string]string{"role": "mx", "env": "prod"}})

	tg := f.target()
	tg.SecurityGroups = nil
	tg.Select = &plan.Select{Tags: map[string]string{"role": "mx", "env": "prod"}, VPCID: testVPC}
	st, err := f.open(t, tg, providers.Env{Parallelism: 4}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, sc := range st.Scopes {
		got[sc.ID] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("selected scopes (-want +got):\n%s", diff)
	}
	if got[other+" ("+testRegion+")"] {
		t.Errorf("a group of another VPC was selected")
	}
	calls := f.emu.CallCounts()
	if calls["DescribeSecurityGroups"] != 1 || calls["DescribeSecurityGroupAttribute"] != 86 {
		t.Errorf("86 groups, one page: calls %v", calls)
	}
	dsg := lastRequest(f, "DescribeSecurityGroups")
	if dsg["Tag.1.Key"][0] != "env" || dsg["Tag.2.Key"][0] != "role" || dsg["VpcId"][0] != testVPC {
		t.Errorf("DescribeSecurityGroups parameters: %v", dsg)
	}
}

func TestRead_pagesGroupsAndRules(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 205; i++ {
		ids = append(ids, f.group(t, map[string]string{"role": "mx"}))
	}
	tg := f.target()
	tg.SecurityGroups = nil
	tg.Select = &plan.Select{Tags: map[string]string{"role": "mx"}}
	st, err := f.open(t, tg, providers.Env{}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Scopes) != 205 || f.emu.CallCounts()["DescribeSecurityGroups"] != 3 {
		t.Errorf("%d scopes in %d DescribeSecurityGroups calls, want 205 in 3", len(st.Scopes),
			f.emu.CallCounts()["DescribeSecurityGroups"])
	}

	f.emu.ResetRequests()
	st, err = f.open(t, f.target(ids...), providers.Env{}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Scopes) != 205 || f.emu.CallCounts()["DescribeSecurityGroups"] != 3 {
		t.Errorf("by id: %d scopes in %d calls, want 205 in 3 (100 ids a call)", len(st.Scopes),
			f.emu.CallCounts()["DescribeSecurityGroups"])
	}
}

func TestRead_pagesRulesPast1000(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	for i := 0; i < 1100; i++ {
		f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25",
			SourceCidrIp: fmt.Sprintf("10.%d.%d.0/24", i/200, i%200)})
	}
	st, err := f.open(t, f.target(gid), providers.Env{}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.Scopes[0].Rules); n != 1100 {
		t.Errorf("%d rules read, want 1100", n)
	}
	if n := f.emu.CallCounts()["DescribeSecurityGroupAttribute"]; n != 2 {
		t.Errorf("%d DescribeSecurityGroupAttribute calls at 1000 a page, want 2", n)
	}
	if tok := lastRequest(f, "DescribeSecurityGroupAttribute").Get("NextToken"); tok == "" {
		t.Errorf("the second page was not asked for with the NextToken")
	}
}

func TestRead_neverMoreCallsAtOnceThanParallelism(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, f.group(t, nil))
	}
	f.emu.SetLatency(2 * time.Millisecond)
	tg := f.target(ids...)
	b := f.open(t, tg, providers.Env{Parallelism: 3})
	tp := planOf(t, mustPolicy(t, mxPolicy), tg, b)
	apply(t, b, tp.Changes)
	if n := f.emu.MaxInFlight(); n > 3 {
		t.Errorf("%d calls in flight at once, parallelism 3", n)
	}
}

func TestRead_unknownGroupIsNamed(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	_, err := f.open(t, f.target(gid, "sg-bp1missing000000000"), providers.Env{}).Read(context.Background())
	var nf *GroupNotFoundError
	if !errors.As(err, &nf) || len(nf.IDs) != 1 || nf.IDs[0] != "sg-bp1missing000000000" {
		t.Fatalf("want a GroupNotFoundError naming the missing group, got %v", err)
	}
}

func TestApply_duplicateAddedBeforeApplyConverges(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	tg := f.target(gid)
	b := f.open(t, tg, providers.Env{})
	p := mustPolicy(t, mxPolicy)
	tp := planOf(t, p, tg, b)

	// Someone adds the IPv4 port-25 rule by hand between plan and apply,
	// right before mailfw's authorize reaches ECS.
	f.emu.BeforeNext("AuthorizeSecurityGroup", func() {
		f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "0.0.0.0/0",
			Description: "added by hand"})
	})
	f.emu.ResetRequests()
	done := apply(t, b, tp.Changes)
	if len(done) != 3 {
		t.Errorf("done: %d changes, want 3 (the fourth was a silent duplicate): %+v", len(done), done)
	}
	for _, c := range done {
		if c.Rule.Port == 25 && c.Rule.Family == plan.IPv4 {
			t.Errorf("the duplicate was counted as done: %+v", c)
		}
	}
	if n := f.emu.CallCounts()["AuthorizeSecurityGroup"]; n != 1 {
		t.Errorf("%d authorize calls, want 1", n)
	}
	if n := len(f.emu.IngressRules(gid)); n != 4 {
		t.Errorf("%d rules, want 4 (no duplicate)", n)
	}
	if tp2 := planOf(t, p, tg, b); len(tp2.Changes) != 0 {
		t.Errorf("second plan: %+v", tp2.Changes)
	}
}

func TestApply_throttlingOn30PercentOfCallsConverges(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, f.group(t, nil))
	}
	tg := f.target(ids...)
	b := f.open(t, tg, providers.Env{Parallelism: 5})
	p := mustPolicy(t, mxPolicy)
	f.emu.FailFraction(0.3, 42, ecsemu.Throttling(""))

	tp := planOf(t, p, tg, b)
	if len(tp.Changes) != 80 {
		t.Fatalf("%d changes, want 80", len(tp.Changes))
	}
	if done := apply(t, b, tp.Changes); len(done) != 80 {
		t.Errorf("done %d, want 80", len(done))
	}
	if tp2 := planOf(t, p, tg, b); len(tp2.Changes) != 0 {
		t.Errorf("second plan: %d changes", len(tp2.Changes))
	}
	throttled := 0
	for _, r := range f.emu.Requests() {
		if r.Code == "Throttling" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("the emulator throttled nothing")
	}
	want := map[string]int{"DescribeSecurityGroups": 3, "DescribeSecurityGroupAttribute": 60,
		"AuthorizeSecurityGroup": 20}
	if diff := cmp.Diff(want, f.successes()); diff != "" {
		t.Errorf("served calls (-want +got), with %d throttled:\n%s", throttled, diff)
	}
}

func TestApply_partWayFailureIsReportedExactlyAndRerunFinishes(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, f.group(t, nil))
	}
	sort.Strings(ids)
	tg := f.target(ids...)
	b := f.open(t, tg, providers.Env{Parallelism: 1})
	p := mustPolicy(t, mxPolicy)
	tp := planOf(t, p, tg, b)

	// The second group's authorize is refused; with one group at a time
	// the third is never begun.
	f.emu.BeforeNext("AuthorizeSecurityGroup", func() {
		f.emu.BeforeNext("AuthorizeSecurityGroup", func() {
			f.emu.FailNext(1, ecsemu.Fault{Action: "AuthorizeSecurityGroup", Status: 403, Code: "Forbidden.RAM",
				Message: "User not authorized to operate on the specified resource."})
		})
	})
	done, err := b.Apply(context.Background(), tp.Changes)
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("want an ApplyError, got %v", err)
	}
	scopeOf := func(cs []plan.Change) map[string]int {
		m := map[string]int{}
		for _, c := range cs {
			m[c.Scope]++
		}
		return m
	}
	s := func(id string) string { return id + " (" + testRegion + ")" }
	if diff := cmp.Diff(map[string]int{s(ids[0]): 4}, scopeOf(done)); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
	if len(ae.Failed) != 1 || ae.Failed[0].Scope != s(ids[1]) || len(ae.Failed[0].NotDone) != 4 {
		t.Errorf("failed: %+v", ae.Failed)
	}
	if diff := cmp.Diff(map[string]int{s(ids[2]): 4}, scopeOf(ae.NotStarted)); diff != "" {
		t.Errorf("not started (-want +got):\n%s", diff)
	}
	msg := err.Error()
	for _, part := range []string{"4 change(s) made", s(ids[1]), "Forbidden.RAM", "not attempted", "1 group"} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q lacks %q", msg, part)
		}
	}
	if len(f.emu.IngressRules(ids[1])) != 0 || len(f.emu.IngressRules(ids[2])) != 0 {
		t.Errorf("rules appeared in groups the error says were not changed")
	}

	tp2 := planOf(t, p, tg, b)
	if diff := cmp.Diff(map[string]int{s(ids[1]): 4, s(ids[2]): 4}, scopeOf(tp2.Changes)); diff != "" {
		t.Errorf("rerun plan (-want +got):\n%s", diff)
	}
	apply(t, b, tp2.Changes)
	if tp3 := planOf(t, p, tg, b); len(tp3.Changes) != 0 {
		t.Errorf("third plan: %+v", tp3.Changes)
	}
}

func TestApply_brokenReplyAfterTheChangeCountsWhatIsThere(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	tg := f.target(gid)
	b := f.open(t, tg, providers.Env{})
	tp := planOf(t, mustPolicy(t, mxPolicy), tg, b)
	f.emu.FailNext(1, ecsemu.BrokenBody("AuthorizeSecurityGroup"))
	done, err := b.Apply(context.Background(), tp.Changes)
	if err != nil || len(done) != 4 {
		t.Errorf("an unreadable reply to a call ECS carried out: done %d, err %v", len(done), err)
	}
}

func TestApply_updateAndRemoveByRuleID(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	keep := f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "587/587", SourceCidrIp: "203.0.113.0/24",
		Description: "mailfw: old text"})
	f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "587/587", Ipv6SourceCidrIp: "2001:db8:10::/48",
		Description: "mailfw: office clients"})
	f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "0.0.0.0/0", Description: "mailfw"})
	f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", Ipv6SourceCidrIp: "::/0", Description: "mailfw"})
	stale := f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "465/465", SourceCidrIp: "192.0.2.0/24",
		Description: "mailfw"})
	hers := f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "465/465", SourceCidrIp: "192.0.2.99",
		Description: "ops"})
	tg := f.target(gid)
	b := f.open(t, tg, providers.Env{})
	tp := planOf(t, mustPolicy(t, mxPolicy), tg, b)
	f.emu.ResetRequests()
	done := apply(t, b, tp.Changes)
	if len(done) != 2 {
		t.Fatalf("done %+v, want one update and one removal", done)
	}
	calls := f.emu.CallCounts()
	want := map[string]int{"DescribeSecurityGroups": 1, "ModifySecurityGroupRule": 1,
		"RevokeSecurityGroup": 1, "DescribeSecurityGroupAttribute": 1}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if got := lastRequest(f, "RevokeSecurityGroup")["SecurityGroupRuleId.1"]; len(got) != 1 || got[0] != stale {
		t.Errorf("revoke ids %v, want %s", got, stale)
	}
	if got := lastRequest(f, "ModifySecurityGroupRule"); got["SecurityGroupRuleId"][0] != keep ||
		got["Description"][0] != "mailfw: office clients" || got["PortRange"] != nil {
		t.Errorf("modify parameters %v", got)
	}
	ids := map[string]bool{}
	for _, r := range f.emu.IngressRules(gid) {
		ids[r.ID] = true
	}
	if !ids[keep] || !ids[hers] || ids[stale] {
		t.Errorf("after apply: %v", ruleLines(f, gid))
	}
}

func TestApply_removalOfARuleAlreadyGoneConverges(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	a := f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "465/465", SourceCidrIp: "192.0.2.0/24", Description: "mailfw"})
	f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "465/465", SourceCidrIp: "198.51.100.0/24", Description: "mailfw"})
	tg := f.target(gid)
	b := f.open(t, tg, providers.Env{})
	tp := planOf(t, mustPolicy(t, partnerPolicy), tg, b)
	f.emu.RemoveRule(gid, a)

	done := apply(t, b, tp.Changes)
	removed := 0
	for _, c := range done {
		if c.Action == plan.Remove {
			removed++
			if c.ID == a {
				t.Errorf("a rule someone else removed was counted as removed by mailfw")
			}
		}
	}
	if removed != 1 || f.emu.CallCounts()["RevokeSecurityGroup"] != 2 {
		t.Errorf("removed %d, revoke calls %d; want 1 and 2 (refused, then without the vanished id)",
			removed, f.emu.CallCounts()["RevokeSecurityGroup"])
	}
	if tp2 := planOf(t, mustPolicy(t, partnerPolicy), tg, b); len(tp2.Changes) != 0 {
		t.Errorf("second plan: %+v", tp2.Changes)
	}
}

func TestApply_moreThan100AdditionsGoIn100sAndQuotaIsCheckedFirst(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	tg := f.target(gid)
	b := f.open(t, tg, providers.Env{})
	var cs []plan.Change
	for i := 0; i < 150; i++ {
		cs = append(cs, plan.Change{Action: plan.Add, Reason: plan.ReasonMissing, Scope: gid + " (" + testRegion + ")",
			Rule: plan.Rule{Family: plan.IPv4, Protocol: "tcp", Port: 25,
				Source: fmt.Sprintf("198.51.%d.%d/32", i/100, i%100), Verdict: plan.Allow}})
	}
	if done := apply(t, b, cs); len(done) != 150 {
		t.Errorf("done %d", len(done))
	}
	if n := f.emu.CallCounts()["AuthorizeSecurityGroup"]; n != 2 {
		t.Errorf("%d authorize calls for 150 rules, want 2", n)
	}

	// 150 ingress + 1 egress; 50 more would make 201 > 200.
	f.rule(t, gid, ecsemu.Rule{Direction: "egress", IpProtocol: "ALL", PortRange: "-1/-1"})
	var more []plan.Change
	for i := 0; i < 25; i++ {
		for _, fam := range []plan.Family{plan.IPv4, plan.IPv6} {
			src := fmt.Sprintf("203.0.113.%d/32", i)
			if fam == plan.IPv6 {
				src = fmt.Sprintf("2001:db8::%x/128", i)
			}
			more = append(more, plan.Change{Action: plan.Add, Scope: gid + " (" + testRegion + ")",
				Rule: plan.Rule{Family: fam, Protocol: "tcp", Port: 587, Source: src, Verdict: plan.Allow}})
		}
	}
	f.emu.ResetRequests()
	_, err := b.Apply(context.Background(), more)
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Groups[0].Used != 151 || qe.Groups[0].Add != 50 {
		t.Fatalf("want a QuotaError for 151+50 > 200, got %v", err)
	}
	if calls := f.emu.CallCounts(); calls["AuthorizeSecurityGroup"] != 0 || calls["DescribeSecurityGroups"] != 1 {
		t.Errorf("a refused apply made calls %v", calls)
	}
}

func TestApply_refusesChangesOfAnotherTargetBeforeWriting(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	b := f.open(t, f.target(gid), providers.Env{})
	_, err := b.Apply(context.Background(), []plan.Change{
		{Action: plan.Add, Scope: gid + " (cn-beijing)", Rule: plan.Rule{Family: plan.IPv4, Protocol: "tcp",
			Port: 25, Source: "0.0.0.0/0", Verdict: plan.Allow}},
		{Action: plan.Remove, Scope: gid + " (cn-hangzhou)", ID: "rule-1"},
	})
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if n := f.emu.Calls(""); n != 0 {
		t.Errorf("%d calls made", n)
	}
}

func TestApply_classicGroupWritesInternetRules(t *testing.T) {
	f := newFixture(t)
	gid, _ := f.emu.AddGroup(ecsemu.Group{Region: testRegion})
	f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "0.0.0.0/0",
		NicType: "intranet", Description: "internal"})
	tg := f.target(gid)
	b := f.open(t, tg, providers.Env{})
	p := mustPolicy(t, mxPolicy)
	tp := planOf(t, p, tg, b)
	if len(tp.Changes) != 4 {
		t.Fatalf("an intranet rule must not satisfy port 25 from the internet: %+v", tp.Changes)
	}
	apply(t, b, tp.Changes)
	for _, r := range f.emu.IngressRules(gid) {
		if r.Description != "internal" && r.NicType != "internet" {
			t.Errorf("rule written with NicType %s: %+v", r.NicType, r)
		}
	}
	if tp2 := planOf(t, p, tg, b); len(tp2.Changes) != 0 {
		t.Errorf("second plan: %+v", tp2.Changes)
	}
}

func TestApply_unreadableGroupAfterWritingIsReportedUnverified(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	tg := f.target(gid)
	b := f.open(t, tg, providers.Env{})
	tp := planOf(t, mustPolicy(t, mxPolicy), tg, b)
	f.emu.BeforeNext("AuthorizeSecurityGroup", func() {
		f.emu.FailNext(1, ecsemu.Fault{Action: "DescribeSecurityGroupAttribute", Status: 403,
			Code: "Forbidden.RAM", Message: "User not authorized to operate on the specified resource."})
	})
	done, err := b.Apply(context.Background(), tp.Changes)
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Failed) != 1 || !ae.Failed[0].Unverified || len(ae.Failed[0].NotDone) != 0 {
		t.Fatalf("want one unverified group with nothing left undone, got %v", err)
	}
	if len(done) != 4 || !strings.Contains(err.Error(), "could not read the group back") {
		t.Errorf("done %d, error %q", len(done), err)
	}
}

func TestRead_stopsWhenTheContextIsCancelled(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 50; i++ {
		ids = append(ids, f.group(t, nil))
	}
	b := f.open(t, f.target(ids...), providers.Env{Parallelism: 2})
	ctx, cancel := context.WithCancel(context.Background())
	f.emu.BeforeNext("DescribeSecurityGroupAttribute", cancel)
	_, err := b.Read(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if n := f.emu.Calls("DescribeSecurityGroupAttribute"); n > 2 {
		t.Errorf("%d rule reads after the cancel, want at most the 2 in flight", n)
	}
}
