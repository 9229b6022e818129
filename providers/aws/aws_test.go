package aws_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mailfw/mailfw/internal/ec2emu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
	mailaws "github.com/mailfw/mailfw/providers/aws"
)

const mxPolicy = `version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [office]
    description: office clients
targets:
  - name: prod
    type: aws
    region: us-east-1
    security_groups: [%s]
    endpoint: "{{URL}}"
`

func TestPlanApply_emptyGroupConvergesInOneAuthorize(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})

	tp := planOf(t, p, tgt, b)
	if got := countActions(tp.Changes); got[plan.Add] != 4 || len(tp.Changes) != 4 {
		t.Fatalf("first plan = %+v, want 4 adds", tp.Changes)
	}
	emu.ClearRequests()
	apply(t, b, tp)
	if n := emu.Calls("AuthorizeSecurityGroupIngress"); n != 1 || emu.Calls("") != 1 {
		t.Fatalf("apply made %d Authorize and %d calls in all, want exactly 1 Authorize", n, emu.Calls(""))
	}
	want := []string{
		`tcp 25-25 0.0.0.0/0 "mailfw" managed-by=mailfw`,
		`tcp 25-25 ::/0 "mailfw" managed-by=mailfw`,
		`tcp 587-587 2001:db8:10::/48 "mailfw: office clients" managed-by=mailfw`,
		`tcp 587-587 203.0.113.0/24 "mailfw: office clients" managed-by=mailfw`,
	}
	if diff := cmp.Diff(want, ruleLines(emu, "us-east-1", g.ID)); diff != "" {
		t.Fatalf("group after apply (-want +got):\n%s", diff)
	}
	req := emu.Requests()[len(emu.Requests())-1]
	if req.Params.Get("TagSpecification.1.ResourceType") != "security-group-rule" ||
		req.Params.Get("TagSpecification.1.Tag.1.Key") != "managed-by" {
		t.Fatalf("Authorize sent no rule tags: %v", req.Params)
	}
	if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
		t.Fatalf("second plan has changes: %+v", again.Changes)
	}
}

func TestRead_reportsScopesQuotaAndIgnoresEgress(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	seed := []ec2emu.Rule{
		{Protocol: "tcp", FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24", Description: "mailfw: relays"},
		{Protocol: "tcp", FromPort: 0, ToPort: 65535, CIDRv6: "2001:db8::/32", Description: "ops"},
		{Protocol: "-1", CIDRv4: "198.51.100.0/24"},
		{Protocol: "icmp", FromPort: 8, ToPort: -1, CIDRv4: "198.51.100.0/24"},
	}
	for _, r := range seed {
		r.GroupID = g.ID
		if _, err := emu.SeedRule("us-east-1", r); err != nil {
			t.Fatal(err)
		}
	}
	_, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	st, err := open(t, tgt, providers.Env{}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sc := st.Scopes[0]
	if sc.ID != g.ID+" (us-east-1)" || sc.Quota != 60 {
		t.Fatalf("scope %q quota %d", sc.ID, sc.Quota)
	}
	if diff := cmp.Diff(map[plan.Family]int{plan.IPv4: 3, plan.IPv6: 1}, sc.QuotaUsed); diff != "" {
		t.Fatalf("quota used (-want +got):\n%s", diff)
	}
	var got []string
	for _, o := range sc.Rules {
		got = append(got, fmt.Sprintf("%s %s %d-%d %s owned=%t %q", o.Family, o.Protocol, o.PortFrom, o.PortTo,
			o.Source, o.Owned, o.Description))
	}
	want := []string{
		`ipv4 tcp 25-25 192.0.2.0/24 owned=true "relays"`,
		`ipv6 tcp 1-65535 2001:db8::/32 owned=false "ops"`,
		`ipv4 all 1-65535 198.51.100.0/24 owned=false ""`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("observed rules (-want +got), egress and ICMP must be absent:\n%s", diff)
	}
	if len(st.Findings) != 1 || st.Findings[0].ID != "aws-outbound-25" || st.Findings[0].Severity != plan.Info {
		t.Fatalf("findings = %+v", st.Findings)
	}
}

func TestTagSelection_acrossTwoRegions(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	mx := []ec2emu.Tag{{Key: "role", Value: "mx"}}
	east := emu.SeedGroup("us-east-1", ec2emu.Group{Tags: mx})
	west := emu.SeedGroup("eu-west-1", ec2emu.Group{Tags: mx})
	other := emu.SeedGroup("eu-west-1", ec2emu.Group{Tags: []ec2emu.Tag{{Key: "role", Value: "web"}}})
	p, tgt := loadPolicy(t, emu, `version: 1
allow:
  - port: smtp
    from: [anywhere]
targets:
  - name: prod
    type: aws
    regions: [us-east-1, eu-west-1]
    select: {tags: {role: mx}}
    endpoint: "{{URL}}"
`)
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	scopes := map[string]int{}
	for _, c := range tp.Changes {
		scopes[c.Scope]++
	}
	want := map[string]int{east.ID + " (us-east-1)": 2, west.ID + " (eu-west-1)": 2}
	if diff := cmp.Diff(want, scopes); diff != "" {
		t.Fatalf("adds per scope (-want +got):\n%s", diff)
	}
	apply(t, b, tp)
	if len(emu.IngressRules("eu-west-1", other.ID)) != 0 {
		t.Fatal("a group outside the selection was changed")
	}
	if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
		t.Fatalf("second plan has changes: %+v", again.Changes)
	}
}

func TestRoundTrip_prefixListsAndReferencedGroups(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	peer := emu.SeedGroup("us-east-1", ec2emu.Group{})
	pl := emu.SeedPrefixList("us-east-1", ec2emu.PrefixList{MaxEntries: 10})
	pl6 := emu.SeedPrefixList("us-east-1", ec2emu.PrefixList{MaxEntries: 4, AddressFamily: "IPv6"})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(`version: 1
sources:
  partners: [%s, %s]
  peers: [%s, sg-0fedcba9876543210/111122223333]
allow:
  - port: submission
    from: [partners, peers]
targets:
  - name: prod
    type: aws
    region: us-east-1
    security_groups: [%s]
    endpoint: "{{URL}}"
`, pl.ID, pl6.ID, peer.ID, g.ID))
	b := open(t, tgt, providers.Env{})
	apply(t, b, planOf(t, p, tgt, b))
	want := []string{
		fmt.Sprintf(`tcp 587-587 %s "mailfw" managed-by=mailfw`, pl.ID),
		fmt.Sprintf(`tcp 587-587 %s "mailfw" managed-by=mailfw`, pl6.ID),
		fmt.Sprintf(`tcp 587-587 %s/%s "mailfw" managed-by=mailfw`, peer.ID, ec2emu.DefaultAccount),
		`tcp 587-587 sg-0fedcba9876543210/111122223333 "mailfw" managed-by=mailfw`,
	}
	if diff := cmp.Diff(want, ruleLines(emu, "us-east-1", g.ID)); diff != "" {
		t.Fatalf("group after apply (-want +got):\n%s", diff)
	}
	tp := planOf(t, p, tgt, b)
	if len(tp.Changes) != 0 {
		t.Fatalf("second plan has changes: %+v", tp.Changes)
	}
	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 10 (IPv4 list) + 2 groups; 4 (IPv6 list) + 2 groups.
	if diff := cmp.Diff(map[plan.Family]int{plan.IPv4: 12, plan.IPv6: 6}, st.Scopes[0].QuotaUsed); diff != "" {
		t.Fatalf("quota used (-want +got):\n%s", diff)
	}
}

func TestApply_duplicateAddedBetweenPlanAndApplyConverges(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	if _, err := emu.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
		FromPort: 25, ToPort: 25, CIDRv4: "0.0.0.0/0", Description: "added by hand"}); err != nil {
		t.Fatal(err)
	}
	emu.ClearRequests()
	done, err := b.Apply(context.Background(), tp.Changes)
	if err != nil {
		t.Fatalf("a duplicate failed the run: %v", err)
	}
	if len(done) != len(tp.Changes) {
		t.Fatalf("done %d of %d", len(done), len(tp.Changes))
	}
	var seq []string
	for _, r := range emu.Requests() {
		seq = append(seq, r.Action+" "+r.Code)
	}
	wantSeq := []string{
		"AuthorizeSecurityGroupIngress InvalidPermission.Duplicate",
		"DescribeSecurityGroupRules ",
		"AuthorizeSecurityGroupIngress ",
	}
	if diff := cmp.Diff(wantSeq, seq); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	var sources []string
	for k, v := range emu.Requests()[2].Params {
		if strings.HasSuffix(k, ".CidrIp") || strings.HasSuffix(k, ".CidrIpv6") {
			sources = append(sources, v[0])
		}
	}
	slices.Sort(sources)
	if diff := cmp.Diff([]string{"2001:db8:10::/48", "203.0.113.0/24", "::/0"}, sources); diff != "" {
		t.Fatalf("re-issued Authorize must carry only what was missing (-want +got):\n%s", diff)
	}
	if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
		t.Fatalf("plan after convergence has changes: %+v", again.Changes)
	}
}

func TestState_digestChangesWhenSomeoneElseChangesTheGroup(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	_, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	digest := func() string {
		st, err := b.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.Digest()
	}
	d1, d2 := digest(), digest()
	if d1 != d2 {
		t.Fatal("digest changed with nothing changed")
	}
	id, err := emu.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 465,
		ToPort: 465, CIDRv4: "192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	d3 := digest()
	if d3 == d1 {
		t.Fatal("digest did not change when a rule was added")
	}
	if err := emu.RemoveRule("us-east-1", id); err != nil {
		t.Fatal(err)
	}
	if digest() != d1 {
		t.Fatal("digest did not return when the rule was removed again")
	}
}

func TestApply_convergesWith30PercentThrottling(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	var ids []string
	for i := range 30 {
		region := []string{"us-east-1", "eu-west-1"}[i%2]
		ids = append(ids, emu.SeedGroup(region, ec2emu.Group{}).ID)
	}
	p, tgt := loadPolicy(t, emu, strings.Replace(fmt.Sprintf(mxPolicy, strings.Join(ids, ", ")),
		"region: us-east-1", "regions: [us-east-1, eu-west-1]", 1))
	b := open(t, tgt, providers.Env{Parallelism: 4})
	emu.Throttle("", 0.3, 42)
	apply(t, b, planOf(t, p, tgt, b))
	if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
		t.Fatalf("plan after throttled apply has %d changes", len(again.Changes))
	}
	throttled := 0
	for _, r := range emu.Requests() {
		if r.Code == "RequestLimitExceeded" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no call was throttled; the test proves nothing")
	}
	t.Logf("%d of %d calls throttled", throttled, emu.Calls(""))
}

func TestApply_failsPartWayOnQuotaThenRerunFinishes(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t, ec2emu.WithQuota(4))
	a := emu.SeedGroup("us-east-1", ec2emu.Group{})
	full := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(`version: 1
allow:
  - port: smtp
    from: [192.0.2.0/24, 198.51.100.0/24]
targets:
  - name: prod
    type: aws
    region: us-east-1
    quota: 4
    security_groups: [%s, %s]
    endpoint: "{{URL}}"
`, a.ID, full.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	// Between plan and apply someone else fills the second group.
	var outside []string
	for i := range 3 {
		id, err := emu.SeedRule("us-east-1", ec2emu.Rule{GroupID: full.ID, Protocol: "tcp",
			FromPort: 2000 + i, ToPort: 2000 + i, CIDRv4: "203.0.113.0/24"})
		if err != nil {
			t.Fatal(err)
		}
		outside = append(outside, id)
	}
	done, err := b.Apply(context.Background(), tp.Changes)
	var ae *mailaws.ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("apply error = %v, want *ApplyError", err)
	}
	if len(done) != 2 || len(ae.Done) != 2 || len(ae.NotDone) != 2 {
		t.Fatalf("done %d (%d), not done %d; want 2 and 2", len(done), len(ae.Done), len(ae.NotDone))
	}
	for _, c := range ae.NotDone {
		if c.Scope != full.ID+" (us-east-1)" {
			t.Fatalf("not-done change on %s", c.Scope)
		}
	}
	for _, want := range []string{"2 of 4 changes made", "not made:", full.ID, "RulesPerSecurityGroupLimitExceeded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := len(emu.IngressRules("us-east-1", a.ID)); n != 2 {
		t.Fatalf("first group has %d rules, want 2", n)
	}
	// The outsider frees room; a rerun finishes the work.
	emu.RemoveRule("us-east-1", outside[0])
	emu.RemoveRule("us-east-1", outside[1])
	rerun := planOf(t, p, tgt, b)
	if len(rerun.Changes) != 2 || rerun.Changes[0].Scope != full.ID+" (us-east-1)" {
		t.Fatalf("rerun plan = %+v", rerun.Changes)
	}
	apply(t, b, rerun)
	if final := planOf(t, p, tgt, b); len(final.Changes) != 0 {
		t.Fatalf("final plan has changes: %+v", final.Changes)
	}
}

func TestApply_refusedWholeWhenAPrefixListWouldPassTheQuota(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	small := emu.SeedGroup("us-east-1", ec2emu.Group{})
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	for i := range 20 {
		if _, err := emu.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
			FromPort: 3000 + i, ToPort: 3000 + i, CIDRv4: "203.0.113.0/24"}); err != nil {
			t.Fatal(err)
		}
	}
	pl := emu.SeedPrefixList("us-east-1", ec2emu.PrefixList{MaxEntries: 50})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(`version: 1
allow:
  - port: smtp
    from: [%s]
targets:
  - name: prod
    type: aws
    region: us-east-1
    security_groups: [%s, %s]
    endpoint: "{{URL}}"
`, pl.ID, small.ID, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	emu.ClearRequests()
	done, err := b.Apply(context.Background(), tp.Changes)
	var qe *mailaws.QuotaError
	if !errors.As(err, &qe) || len(done) != 0 {
		t.Fatalf("apply = %d done, %v; want a *QuotaError and nothing done", len(done), err)
	}
	if qe.Scope != g.ID+" (us-east-1)" || qe.Used != 20 || qe.Adding != 50 || qe.Family != plan.IPv4 {
		t.Fatalf("quota error = %+v", qe)
	}
	if n := emu.Calls("AuthorizeSecurityGroupIngress"); n != 0 {
		t.Fatalf("%d writes before the refusal, want 0", n)
	}
}

func TestApply_descriptionChangeUpdatesInPlace(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	apply(t, b, planOf(t, p, tgt, b))
	before := emu.IngressRules("us-east-1", g.ID)
	p2, tgt2 := loadPolicy(t, emu, strings.Replace(fmt.Sprintf(mxPolicy, g.ID), "office clients", "staff", 1))
	tp := planOf(t, p2, tgt2, b)
	if got := countActions(tp.Changes); got[plan.Update] != 2 || len(tp.Changes) != 2 {
		t.Fatalf("plan = %+v, want 2 updates", tp.Changes)
	}
	emu.ClearRequests()
	apply(t, b, tp)
	if emu.Calls("UpdateSecurityGroupRuleDescriptionsIngress") != 1 || emu.Calls("RevokeSecurityGroupIngress") != 0 ||
		emu.Calls("AuthorizeSecurityGroupIngress") != 0 {
		t.Fatalf("calls: %+v", emu.Requests())
	}
	after := emu.IngressRules("us-east-1", g.ID)
	for i := range after {
		if after[i].ID != before[i].ID {
			t.Fatalf("rule %s was replaced by %s", before[i].ID, after[i].ID)
		}
	}
	if diff := cmp.Diff([]string{
		`tcp 25-25 0.0.0.0/0 "mailfw" managed-by=mailfw`,
		`tcp 25-25 ::/0 "mailfw" managed-by=mailfw`,
		`tcp 587-587 2001:db8:10::/48 "mailfw: staff" managed-by=mailfw`,
		`tcp 587-587 203.0.113.0/24 "mailfw: staff" managed-by=mailfw`,
	}, ruleLines(emu, "us-east-1", g.ID)); diff != "" {
		t.Fatalf("group (-want +got):\n%s", diff)
	}
}

func TestApply_addsLandBeforeRemovalsByProperties(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	old, err := emu.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 587,
		ToPort: 587, CIDRv4: "192.0.2.0/24", Description: "mailfw: old office"})
	if err != nil {
		t.Fatal(err)
	}
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	emu.ClearRequests()
	apply(t, b, tp)
	var writes []string
	for _, r := range emu.Requests() {
		if strings.HasPrefix(r.Action, "Authorize") || strings.HasPrefix(r.Action, "Revoke") {
			writes = append(writes, r.Action)
		}
	}
	if diff := cmp.Diff([]string{"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"}, writes); diff != "" {
		t.Fatalf("write order (-want +got):\n%s", diff)
	}
	last := emu.Requests()[len(emu.Requests())-1].Params
	got := fmt.Sprintf("%s %s-%s %s ids=%q", last.Get("IpPermissions.1.IpProtocol"), last.Get("IpPermissions.1.FromPort"),
		last.Get("IpPermissions.1.ToPort"), last.Get("IpPermissions.1.IpRanges.1.CidrIp"), last.Get("SecurityGroupRuleId.1"))
	if want := `tcp 587-587 192.0.2.0/24 ids=""`; got != want {
		t.Fatalf("revoked %s, want %s", got, want)
	}
	for _, r := range emu.IngressRules("us-east-1", g.ID) {
		if r.ID == old {
			t.Fatalf("rule %s is still there", old)
		}
	}
}

func TestApply_ruleRemovedBySomeoneElseCountsAsRemoved(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	var ids []string
	for _, cidr := range []string{"192.0.2.0/24", "192.0.2.128/25"} {
		id, err := emu.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 465,
			ToPort: 465, CIDRv4: cidr, Tags: []ec2emu.Tag{{Key: "managed-by", Value: "mailfw"}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	emu.BeforeNext("RevokeSecurityGroupIngress", func() { emu.RemoveRule("us-east-1", ids[0]) })
	done, err := b.Apply(context.Background(), tp.Changes)
	if err != nil || len(done) != len(tp.Changes) {
		t.Fatalf("apply = %d of %d, %v", len(done), len(tp.Changes), err)
	}
	if final := planOf(t, p, tgt, b); len(final.Changes) != 0 {
		t.Fatalf("final plan has changes: %+v", final.Changes)
	}
}

func TestOpen_badCredentialsGiveOneClearError(t *testing.T) {
	isolateAWSEnv(t, testKey, "not-the-secret")
	emu := newEmu(t)
	var ids []string
	for i := range 12 {
		ids = append(ids, emu.SeedGroup([]string{"us-east-1", "eu-west-1", "ap-south-1"}[i%3], ec2emu.Group{}).ID)
	}
	p, tgt := loadPolicy(t, emu, strings.Replace(fmt.Sprintf(mxPolicy, strings.Join(ids, ", ")),
		"region: us-east-1", "regions: [us-east-1, eu-west-1, ap-south-1]", 1))
	b := open(t, tgt, providers.Env{})
	_, err := plan.PlanTarget(context.Background(), p, tgt, b)
	var ae *mailaws.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want *AuthError", err)
	}
	if ae.Source != "EnvConfigCredentials" || !strings.Contains(err.Error(), "EnvConfigCredentials") {
		t.Fatalf("error does not name the credential source: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Fatal("the error prints the secret")
	}
	if strings.Count(err.Error(), "AuthFailure") != 1 {
		t.Fatalf("error is not one error: %v", err)
	}
	if n := emu.Calls(""); n > 3 {
		t.Fatalf("%d calls for refused credentials, want at most one per region and no retries", n)
	}
}

func TestOpen_profileAndEndpointFromTheSharedConfig(t *testing.T) {
	dir := isolateAWSEnv(t, "", "")
	emu := newEmu(t)
	g := emu.SeedGroup("eu-west-1", ec2emu.Group{})
	creds := filepath.Join(dir, "credentials")
	conf := filepath.Join(dir, "config")
	os.WriteFile(creds, []byte("[prod]\naws_access_key_id = "+testKey+"\naws_secret_access_key = "+testSecret+"\n"), 0o600)
	os.WriteFile(conf, []byte("[profile prod]\nregion = eu-west-1\n"), 0o600)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_ENDPOINT_URL_EC2", emu.URL)
	tgt := plan.Target{Name: "prod", Type: "aws", Profile: "prod", SecurityGroups: []string{g.ID}}
	b := open(t, tgt, providers.Env{})
	if diff := cmp.Diff([]string{"eu-west-1"}, b.Regions()); diff != "" {
		t.Fatalf("regions from the profile (-want +got):\n%s", diff)
	}
	st, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Scopes) != 1 || st.Scopes[0].ID != g.ID+" (eu-west-1)" {
		t.Fatalf("scopes = %+v", st.Scopes)
	}
}

func TestRead_unknownGroupIsAnErrorNamingIt(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	tgt := plan.Target{Name: "prod", Type: "aws", Regions: []string{"us-east-1", "eu-west-1"},
		Endpoint: emu.URL, SecurityGroups: []string{g.ID, "sg-0123456789abcdef0"}}
	_, err := open(t, tgt, providers.Env{}).Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "sg-0123456789abcdef0") ||
		strings.Contains(err.Error(), g.ID) {
		t.Fatalf("error = %v, want one naming only the missing group", err)
	}
	tgt.SecurityGroups = []string{"sg-bad"}
	if _, err := mailaws.New(context.Background(), tgt, providers.Env{}); err == nil ||
		!strings.Contains(err.Error(), `"sg-bad"`) {
		t.Fatalf("malformed id error = %v", err)
	}
}

func TestCapabilities_descriptionFollowsAWSRules(t *testing.T) {
	caps := (&mailaws.Backend{}).Capabilities()
	if caps.Deny || caps.Limit || !caps.IPv6 || !caps.CloudRefs {
		t.Fatalf("capabilities = %+v", caps)
	}
	tests := []struct {
		name, in, errHas string
	}{
		{"plain", "office clients (HQ) #2", ""},
		{"bad-char", "office <clients>", `'<'`},
		{"non-ascii", "büro", `'ü'`},
		{"fits", strings.Repeat("a", 247), ""},
		{"too-long-with-mark", strings.Repeat("a", 248), "256 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := caps.Description(tt.in)
			if tt.errHas == "" {
				if err != nil || got != tt.in {
					t.Fatalf("Description(%q) = %q, %v", tt.in, got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("Description(%q) error = %v, want it to mention %s", tt.in, err, tt.errHas)
			}
		})
	}
}

func TestProgress_linesWhileScanningManyGroups(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	mx := []ec2emu.Tag{{Key: "role", Value: "mx"}}
	for range 450 {
		emu.SeedGroup("us-east-1", ec2emu.Group{Tags: mx})
	}
	var out strings.Builder
	tgt := plan.Target{Name: "prod", Type: "aws", Region: "us-east-1", Endpoint: emu.URL,
		Select: &plan.Select{Tags: map[string]string{"role": "mx"}}}
	b := open(t, tgt, providers.Env{Progress: &out, Parallelism: 1})
	if _, err := b.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "aws: read the rules of 200 of 450 security groups\n" +
		"aws: read the rules of 400 of 450 security groups\n" +
		"aws: read the rules of 450 of 450 security groups\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Fatalf("progress (-want +got):\n%s", diff)
	}
}

func TestRead_tagAloneMarksARuleOnlyWithoutADescriptionOfItsOwn(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	tag := []ec2emu.Tag{{Key: "managed-by", Value: "mailfw"}}
	for _, r := range []ec2emu.Rule{
		{GroupID: g.ID, Protocol: "tcp", FromPort: 2525, ToPort: 2525, CIDRv4: "192.0.2.0/24", Tags: tag},
		{GroupID: g.ID, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRv4: "198.51.100.0/24", Tags: tag,
			Description: "ssh for admins"},
	} {
		if _, err := emu.SeedRule("us-east-1", r); err != nil {
			t.Fatal(err)
		}
	}
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	for _, c := range tp.Changes {
		if c.Action == plan.Remove && c.Rule.Port == 22 {
			t.Fatalf("the plan removes a tagged rule someone re-described: %+v", c)
		}
	}
	removed2525 := false
	for _, c := range tp.Changes {
		removed2525 = removed2525 || (c.Action == plan.Remove && c.Rule.Port == 2525)
	}
	if !removed2525 {
		t.Errorf("the tag-only rule mailfw owns was not planned for removal: %+v", tp.Changes)
	}
}
