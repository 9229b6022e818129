package aws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mailfw/mailfw/internal/ec2emu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
	mailaws "github.com/mailfw/mailfw/providers/aws"
)

// admin is another administrator's SDK client on the emulator.
func admin(emu *ec2emu.Server, region string) *ec2.Client {
	return ec2.New(ec2.Options{Region: region, BaseEndpoint: aws.String(emu.URL),
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, "")})
}

// repurpose edits rule id in place into tcp/22 from 192.0.2.0/24, as an
// administrator would with ModifySecurityGroupRules (the id stays).
func repurpose(emu *ec2emu.Server, groupID, id string) error {
	_, err := admin(emu, "us-east-1").ModifySecurityGroupRules(context.Background(), &ec2.ModifySecurityGroupRulesInput{
		GroupId: aws.String(groupID),
		SecurityGroupRules: []types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: aws.String(id),
			SecurityGroupRule: &types.SecurityGroupRuleRequest{IpProtocol: aws.String("tcp"),
				FromPort: aws.Int32(22), ToPort: aws.Int32(22), CidrIpv4: aws.String("192.0.2.0/24"),
				Description: aws.String("ssh for admins")}}},
	})
	return err
}

func seedRule(t *testing.T, emu *ec2emu.Server, r ec2emu.Rule) string {
	t.Helper()
	id, err := emu.SeedRule("us-east-1", r)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestApply_ruleRepurposedJustBeforeTheRevokeIsKept(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	old := seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 2525, ToPort: 2525,
		CIDRv4: "0.0.0.0/0", Description: "mailfw: old relay"})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	if got := countActions(tp.Changes); got[plan.Remove] != 1 || got[plan.Add] != 4 {
		t.Fatalf("plan = %+v, want 4 adds and the removal of %s", tp.Changes, old)
	}
	var hookErr error
	emu.BeforeNext("RevokeSecurityGroupIngress", func() { hookErr = repurpose(emu, g.ID, old) })
	done, err := b.Apply(context.Background(), tp.Changes)
	if hookErr != nil {
		t.Fatalf("the other admin's edit failed: %v", hookErr)
	}
	var ae *mailaws.ApplyError
	var ce *mailaws.ChangedError
	if !errors.As(err, &ae) || !errors.As(err, &ce) {
		t.Fatalf("apply error = %v, want an *ApplyError holding a *ChangedError", err)
	}
	if len(done) != 4 || countActions(done)[plan.Add] != 4 || len(ae.NotDone) != 1 || ae.NotDone[0].ID != old {
		t.Fatalf("done %+v, not done %+v; want the 4 adds done and the removal not", done, ae.NotDone)
	}
	if len(ce.Rules) != 1 || ce.Rules[0].Change.ID != old ||
		!strings.Contains(ce.Rules[0].Now, `tcp 22-22 from 192.0.2.0/24 "ssh for admins"`) {
		t.Fatalf("changed rules = %+v", ce.Rules)
	}
	for _, want := range []string{"4 of 5 changes made", "changed since the plan", old} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	lines := ruleLines(emu, "us-east-1", g.ID)
	if !strings.Contains(strings.Join(lines, "\n"), `tcp 22-22 192.0.2.0/24 "ssh for admins"`) {
		t.Fatalf("the ssh rule is gone: %q", lines)
	}
	if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
		t.Fatalf("rerun plan has changes: %+v", again.Changes)
	}
}

func TestApply_rulesChangedSincePlanAreNotTouchedAndRecheckIsBatched(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	var ids, olds []string
	for range 3 {
		g := emu.SeedGroup("us-east-1", ec2emu.Group{})
		ids = append(ids, g.ID)
		olds = append(olds, seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 2525,
			ToPort: 2525, CIDRv4: "0.0.0.0/0", Description: "mailfw: old relay"}))
	}
	// The first group also has a rule whose description mailfw will update.
	office := seedRule(t, emu, ec2emu.Rule{GroupID: ids[0], Protocol: "tcp", FromPort: 587, ToPort: 587,
		CIDRv4: "203.0.113.0/24", Description: "mailfw: old office"})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, strings.Join(ids, ", ")))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	if got := countActions(tp.Changes); got[plan.Remove] != 3 || got[plan.Update] != 1 {
		t.Fatalf("plan = %+v, want 3 removals and 1 update", tp.Changes)
	}
	// Between plan and apply: the first group's removal and update are
	// re-purposed, the second group's rule loses its mark.
	if err := repurpose(emu, ids[0], olds[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(emu, "us-east-1").ModifySecurityGroupRules(context.Background(), &ec2.ModifySecurityGroupRulesInput{
		GroupId: aws.String(ids[0]),
		SecurityGroupRules: []types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: aws.String(office),
			SecurityGroupRule: &types.SecurityGroupRuleRequest{IpProtocol: aws.String("tcp"),
				FromPort: aws.Int32(993), ToPort: aws.Int32(993), CidrIpv4: aws.String("203.0.113.0/24"),
				Description: aws.String("imaps")}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(emu, "us-east-1").UpdateSecurityGroupRuleDescriptionsIngress(context.Background(),
		&ec2.UpdateSecurityGroupRuleDescriptionsIngressInput{GroupId: aws.String(ids[1]),
			SecurityGroupRuleDescriptions: []types.SecurityGroupRuleDescription{{
				SecurityGroupRuleId: aws.String(olds[1]), Description: aws.String("partner relay")}}}); err != nil {
		t.Fatal(err)
	}
	emu.ClearRequests()
	done, err := b.Apply(context.Background(), tp.Changes)
	var ce *mailaws.ChangedError
	if !errors.As(err, &ce) {
		t.Fatalf("apply error = %v, want a *ChangedError", err)
	}
	var changed []string
	for _, r := range ce.Rules {
		changed = append(changed, string(r.Change.Action)+" "+r.Change.ID)
	}
	if diff := cmp.Diff([]string{"update " + office, "remove " + olds[0]}, changed); diff != "" {
		t.Fatalf("changed rules of the first group (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), `now: tcp 993-993 from 203.0.113.0/24 "imaps"`) ||
		!strings.Contains(err.Error(), olds[1]) || !strings.Contains(err.Error(), `"partner relay" unmarked`) {
		t.Fatalf("error does not say what the rules are now: %v", err)
	}
	// Only the third group's removal and the additions were made.
	if got := countActions(done); got[plan.Remove] != 1 || got[plan.Update] != 0 {
		t.Fatalf("done = %+v", done)
	}
	for i, id := range ids {
		n := len(emu.IngressRules("us-east-1", id))
		if want := []int{5, 5, 4}[i]; n != want {
			t.Errorf("group %d holds %d rules, want %d: %q", i, n, want, ruleLines(emu, "us-east-1", id))
		}
	}
	var seq []string
	for _, r := range emu.Requests() {
		seq = append(seq, r.Action)
	}
	want := []string{
		"AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupIngress",
		"DescribeSecurityGroupRules", // one batched re-check of the group with an update
		"DescribeSecurityGroupRules", // one batched re-check of the three groups with removals
		"RevokeSecurityGroupIngress", // the third group only
	}
	if diff := cmp.Diff(want, seq); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	if got := len(emu.Requests()[4].Params["Filter.1.Value.3"]); got != 1 {
		t.Fatalf("the re-check before removals does not name the three groups in one call: %v",
			emu.Requests()[4].Params)
	}
}

// mixedGroup seeds a group whose plan under mxPolicy has 3 additions, 1
// description update and 1 removal.
func mixedGroup(t *testing.T, emu *ec2emu.Server) ec2emu.Group {
	t.Helper()
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 2525, ToPort: 2525,
		CIDRv4: "0.0.0.0/0", Description: "mailfw: old relay"})
	seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 587, ToPort: 587,
		CIDRv4: "203.0.113.0/24", Description: "mailfw: old office"})
	return g
}

var mxLines = []string{
	`tcp 25-25 0.0.0.0/0 "mailfw" managed-by=mailfw`,
	`tcp 25-25 ::/0 "mailfw" managed-by=mailfw`,
	`tcp 587-587 2001:db8:10::/48 "mailfw: office clients" managed-by=mailfw`,
	`tcp 587-587 203.0.113.0/24 "mailfw: office clients"`,
}

func TestApply_brokenSuccessReplyCountsWhatWasMade(t *testing.T) {
	for _, action := range []string{"AuthorizeSecurityGroupIngress", "UpdateSecurityGroupRuleDescriptionsIngress",
		"RevokeSecurityGroupIngress"} {
		t.Run(action, func(t *testing.T) {
			isolateAWSEnv(t, testKey, testSecret)
			emu := newEmu(t)
			g := mixedGroup(t, emu)
			p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
			b := open(t, tgt, providers.Env{})
			tp := planOf(t, p, tgt, b)
			if got := countActions(tp.Changes); got[plan.Add] != 3 || got[plan.Update] != 1 || got[plan.Remove] != 1 {
				t.Fatalf("plan = %+v", tp.Changes)
			}
			emu.TruncateNext(action, 1)
			emu.ClearRequests()
			done, err := b.Apply(context.Background(), tp.Changes)
			if err != nil || len(done) != 5 {
				t.Fatalf("apply = %d of 5 done, %v; the truncated call took effect", len(done), err)
			}
			reqs := emu.Requests()
			for i, r := range reqs {
				if r.Action == action && (i+1 == len(reqs) || reqs[i+1].Action != "DescribeSecurityGroupRules") {
					t.Fatalf("no re-read after the broken %s reply", action)
				}
			}
			if diff := cmp.Diff(mxLines, ruleLines(emu, "us-east-1", g.ID)); diff != "" {
				t.Fatalf("group (-want +got):\n%s", diff)
			}
			if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
				t.Fatalf("rerun plan has changes: %+v", again.Changes)
			}
		})
	}
}

func TestApply_serverErrorAfterRetriesIsCheckedAgainstTheGroup(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := mixedGroup(t, emu)
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	// Every attempt of the removal fails with a 5xx (the emulator then
	// changes nothing): the re-read must find the rule still there.
	emu.FailNext("RevokeSecurityGroupIngress", 100, "InternalError")
	done, err := b.Apply(context.Background(), tp.Changes)
	var ae *mailaws.ApplyError
	if !errors.As(err, &ae) || len(done) != 4 || len(ae.NotDone) != 1 || ae.NotDone[0].Action != plan.Remove {
		t.Fatalf("apply = %d done, %v; want 4 done and the removal not", len(done), err)
	}
	if len(ae.Unverified) != 0 || !strings.Contains(err.Error(), "InternalError") ||
		!strings.Contains(err.Error(), "holds 0 of the 1 changes") {
		t.Fatalf("error = %v", err)
	}
	emu.ClearFaults()
	apply(t, b, planOf(t, p, tgt, b))
	if diff := cmp.Diff(mxLines, ruleLines(emu, "us-east-1", g.ID)); diff != "" {
		t.Fatalf("group after the rerun (-want +got):\n%s", diff)
	}
}

func TestApply_unknownOutcomeThatCannotBeReadBackIsUnverified(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	emu.TruncateNext("AuthorizeSecurityGroupIngress", 1)
	emu.FailNext("DescribeSecurityGroupRules", 1, "UnauthorizedOperation")
	done, err := b.Apply(context.Background(), tp.Changes)
	var ae *mailaws.ApplyError
	if !errors.As(err, &ae) || len(done) != 0 || len(ae.Unverified) != 4 {
		t.Fatalf("apply = %d done, %v; want the 4 adds unverified", len(done), err)
	}
	if !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("error does not say the outcome is unknown: %v", err)
	}
	if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
		t.Fatalf("the adds were made; the next plan must say so: %+v", again.Changes)
	}
}

func TestLogs_sayWhereTheEndpointComesFrom(t *testing.T) {
	tests := []struct {
		name, env, target, want string
	}{
		{"target", "", "http://127.0.0.1:1", `endpoint_source=target endpoint=http://127.0.0.1:1 `},
		{"environment", "http://u:hidden-secret@127.0.0.1:2/?X-Amz-Security-Token=tok", "",
			`endpoint_source=environment endpoint=http://127.0.0.1:2 `},
		{"default", "", "", `endpoint_source=default endpoint="" `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWSEnv(t, testKey, testSecret)
			if tt.env != "" {
				t.Setenv("AWS_ENDPOINT_URL_EC2", tt.env)
			}
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			open(t, plan.Target{Name: "prod", Type: "aws", Region: "us-east-1", Endpoint: tt.target,
				SecurityGroups: []string{"sg-0123456789abcdef0"}}, providers.Env{Logger: logger})
			out := buf.String()
			if !strings.Contains(out, `msg="aws target configured"`) || !strings.Contains(out, tt.want) {
				t.Fatalf("log does not hold %q:\n%s", tt.want, out)
			}
			if strings.Contains(out, "hidden-secret") || strings.Contains(out, "tok") ||
				strings.Contains(out, "endpoint_override") {
				t.Fatalf("log prints a secret or the old key:\n%s", out)
			}
		})
	}
}

// A reply large enough to be still arriving when the SDK closes the request
// body must not lose its connection (and be retried after EC2 ran the call).
func TestRead_largeRepliesAreNotCutAndRetried(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	var ids []string
	for range 3 {
		g := emu.SeedGroup("us-east-1", ec2emu.Group{})
		ids = append(ids, g.ID)
		for p := range 12 {
			seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 2525 + p, ToPort: 2525 + p,
				CIDRv4: "0.0.0.0/0", Description: "mailfw: old relay"})
		}
	}
	_, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, strings.Join(ids, ", ")))
	b := open(t, tgt, providers.Env{})
	emu.ClearRequests()
	const reads = 100
	for range reads {
		if _, err := b.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := emu.Calls("DescribeSecurityGroupRules"); n != reads {
		t.Fatalf("%d DescribeSecurityGroupRules calls for %d reads: replies were cut and the calls retried", n, reads)
	}
}

// In a default VPC EC2 revokes what matches and lists the rest instead of
// refusing the call; the edited rule must still be reported, the other
// removal made.
func TestApply_defaultVPCRevokeReportsTheRepurposedRule(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t, ec2emu.WithDefaultVPC())
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	old := seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 2525, ToPort: 2525,
		CIDRv4: "0.0.0.0/0", Description: "mailfw: old relay"})
	other := seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 2526, ToPort: 2526,
		CIDRv4: "0.0.0.0/0", Description: "mailfw"})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	var hookErr error
	emu.BeforeNext("RevokeSecurityGroupIngress", func() { hookErr = repurpose(emu, g.ID, old) })
	done, err := b.Apply(context.Background(), tp.Changes)
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	var ce *mailaws.ChangedError
	if !errors.As(err, &ce) || len(ce.Rules) != 1 || ce.Rules[0].Change.ID != old {
		t.Fatalf("apply error = %v, want a *ChangedError naming %s", err, old)
	}
	removed := 0
	for _, c := range done {
		if c.Action == plan.Remove {
			removed++
			if c.ID != other {
				t.Fatalf("reported the removal of %s as done", c.ID)
			}
		}
	}
	if removed != 1 {
		t.Fatalf("done = %+v, want the removal of %s among them", done, other)
	}
	lines := strings.Join(ruleLines(emu, "us-east-1", g.ID), "\n")
	if !strings.Contains(lines, `tcp 22-22 192.0.2.0/24 "ssh for admins"`) || strings.Contains(lines, "2526") {
		t.Fatalf("group = %s", lines)
	}
	if n := emu.Calls("RevokeSecurityGroupIngress"); n != 1 {
		t.Fatalf("%d revokes, want 1: nothing is left to re-issue", n)
	}
}

func TestApply_ruleRepurposedJustBeforeTheUpdateKeepsItsDescription(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	v4 := seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 587, ToPort: 587,
		CIDRv4: "203.0.113.0/24", Description: "mailfw: old office"})
	seedRule(t, emu, ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 587, ToPort: 587,
		CIDRv6: "2001:db8:10::/48", Description: "mailfw: old office"})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	if got := countActions(tp.Changes); got[plan.Update] != 2 {
		t.Fatalf("plan = %+v, want 2 updates", tp.Changes)
	}
	var hookErr error
	emu.BeforeNext("UpdateSecurityGroupRuleDescriptionsIngress", func() { hookErr = repurpose(emu, g.ID, v4) })
	done, err := b.Apply(context.Background(), tp.Changes)
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	var ce *mailaws.ChangedError
	if !errors.As(err, &ce) || len(ce.Rules) != 1 || ce.Rules[0].Change.ID != v4 {
		t.Fatalf("apply error = %v, want a *ChangedError naming %s", err, v4)
	}
	if got := countActions(done); got[plan.Update] != 1 || got[plan.Add] != 2 {
		t.Fatalf("done = %+v, want the 2 adds and the IPv6 update", done)
	}
	lines := strings.Join(ruleLines(emu, "us-east-1", g.ID), "\n")
	for _, want := range []string{`tcp 22-22 192.0.2.0/24 "ssh for admins"`, `tcp 587-587 2001:db8:10::/48 "mailfw: office clients"`} {
		if !strings.Contains(lines, want) {
			t.Fatalf("group lacks %s:\n%s", want, lines)
		}
	}
	// The rerun adds the IPv4 office rule the edit took away, and leaves the
	// ssh rule alone.
	rerun := planOf(t, p, tgt, b)
	if len(rerun.Changes) != 1 || rerun.Changes[0].Action != plan.Add || rerun.Changes[0].Rule.Source != "203.0.113.0/24" {
		t.Fatalf("rerun plan = %+v", rerun.Changes)
	}
}
