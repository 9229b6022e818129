package aws_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/ec2emu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
	mailaws "github.com/mailfw/mailfw/providers/aws"
)

var _ providers.Factory = mailaws.Open

func TestApply_serverErrorsAreRetried(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	be := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, be)
	emu.FailNext("AuthorizeSecurityGroupIngress", 2, "InternalError")
	apply(t, be, tp)
	if n := emu.Calls("AuthorizeSecurityGroupIngress"); n != 3 {
		t.Fatalf("%d Authorize attempts, want 2 failed and 1 good", n)
	}
	if n := len(emu.IngressRules("us-east-1", g.ID)); n != 4 {
		t.Fatalf("%d rules after retried apply, want 4", n)
	}
}

func TestRead_truncatedReplyIsAnError(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	_, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	emu.TruncateNext("DescribeSecurityGroupRules", 1)
	_, err := open(t, tgt, providers.Env{}).Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "DescribeSecurityGroupRules in us-east-1") {
		t.Fatalf("error = %v, want one naming the call", err)
	}
}

func TestApply_unauthorizedWriteChangesNothingAndSaysWhy(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	emu.Deny("AuthorizeSecurityGroupIngress")
	done, err := b.Apply(context.Background(), tp.Changes)
	if len(done) != 0 || err == nil || !strings.Contains(err.Error(), "may not call ec2:AuthorizeSecurityGroupIngress") {
		t.Fatalf("apply = %d done, %v", len(done), err)
	}
	if !strings.Contains(err.Error(), "0 of 4 changes made") {
		t.Fatalf("error does not say what was made: %v", err)
	}
}

func TestRead_emptySelectionIsAFinding(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	tgt := plan.Target{Name: "prod", Type: "aws", Region: "us-east-1", Endpoint: emu.URL,
		Select: &plan.Select{Tags: map[string]string{"role": "mx"}}}
	st, err := open(t, tgt, providers.Env{}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Scopes) != 0 || len(st.Findings) != 2 || st.Findings[1].ID != "aws-no-groups" {
		t.Fatalf("state = %+v", st)
	}
}

func TestApply_adaptiveRetryModeConvergesUnderThrottling(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	t.Setenv("AWS_RETRY_MODE", "adaptive")
	emu := newEmu(t)
	var ids []string
	for range 3 {
		ids = append(ids, emu.SeedGroup("us-east-1", ec2emu.Group{}).ID)
	}
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, strings.Join(ids, ", ")))
	b := open(t, tgt, providers.Env{})
	tp := planOf(t, p, tgt, b)
	// NOTE: one throttle only: after a throttle the adaptive limiter makes
	// the SDK wait in real time (about 1.5 s here), which no backoff option
	// shortens.
	emu.FailNext("AuthorizeSecurityGroupIngress", 1, "RequestLimitExceeded")
	apply(t, b, tp)
	throttled := 0
	for _, r := range emu.Requests() {
		if r.Code == "RequestLimitExceeded" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no call was throttled; the test proves nothing")
	}
	if again := planOf(t, p, tgt, b); len(again.Changes) != 0 {
		t.Fatalf("plan after apply has %d changes", len(again.Changes))
	}
}
