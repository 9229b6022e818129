package aws_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/mailfw/mailfw/internal/ec2emu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
	mailaws "github.com/mailfw/mailfw/providers/aws"
)

const (
	testKey    = "AKIDMAILFWTEST000001"
	testSecret = "mailfw-test-secret-value"
)

// isolateAWSEnv makes the SDK's default chain see only what the test sets:
// static keys in the environment, empty config files, no instance metadata,
// no endpoint or region from the host.
func isolateAWSEnv(tb testing.TB, key, secret string) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, name := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
	} {
		tb.Setenv(name, "")
		os.Unsetenv(name)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("AWS_CONFIG_FILE", empty)
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if key != "" {
		tb.Setenv("AWS_ACCESS_KEY_ID", key)
		tb.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	}
	return dir
}

func newEmu(tb testing.TB, opts ...ec2emu.Option) *ec2emu.Server {
	tb.Helper()
	s := ec2emu.New(append([]ec2emu.Option{ec2emu.WithCredentials(testKey, testSecret)}, opts...)...)
	tb.Cleanup(s.Close)
	return s
}

var zeroBackoff = mailaws.WithRetryBackoff(
	retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil }))

// loadPolicy parses a policy whose one target is an aws target; the text
// may use {{URL}} for the emulator's endpoint.
func loadPolicy(tb testing.TB, emu *ec2emu.Server, text string) (*plan.Policy, plan.Target) {
	tb.Helper()
	text = strings.ReplaceAll(text, "{{URL}}", emu.URL)
	p, err := plan.ParsePolicy("mailfw.yaml", []byte(text))
	if err != nil {
		tb.Fatalf("policy: %v", err)
	}
	return p, p.Targets[0]
}

func open(tb testing.TB, t plan.Target, env providers.Env, opts ...mailaws.Option) *mailaws.Backend {
	tb.Helper()
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	b, err := mailaws.New(context.Background(), t, env, append([]mailaws.Option{zeroBackoff}, opts...)...)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	return b
}

func planOf(tb testing.TB, p *plan.Policy, t plan.Target, b plan.Backend) plan.TargetPlan {
	tb.Helper()
	tp, err := plan.PlanTarget(context.Background(), p, t, b)
	if err != nil {
		tb.Fatalf("plan: %v", err)
	}
	return tp
}

func apply(tb testing.TB, b plan.Backend, tp plan.TargetPlan) []plan.Change {
	tb.Helper()
	done, err := b.Apply(context.Background(), tp.Changes)
	if err != nil {
		tb.Fatalf("apply: %v", err)
	}
	if len(done) != len(tp.Changes) {
		tb.Fatalf("apply made %d of %d changes", len(done), len(tp.Changes))
	}
	return done
}

// ruleLines renders a group's ingress rules as sorted text for cmp.Diff.
func ruleLines(emu *ec2emu.Server, region, groupID string) []string {
	var out []string
	for _, r := range emu.IngressRules(region, groupID) {
		src := r.CIDRv4 + r.CIDRv6 + r.PrefixListID
		if r.RefGroupID != "" {
			src = r.RefGroupID + "/" + r.RefUserID
		}
		tags := ""
		for _, t := range r.Tags {
			tags += " " + t.Key + "=" + t.Value
		}
		out = append(out, fmt.Sprintf("%s %d-%d %s %q%s", r.Protocol, r.FromPort, r.ToPort, src, r.Description, tags))
	}
	slices.Sort(out)
	return out
}

func countActions(cs []plan.Change) map[plan.Action]int {
	m := map[plan.Action]int{}
	for _, c := range cs {
		m[c.Action]++
	}
	return m
}
