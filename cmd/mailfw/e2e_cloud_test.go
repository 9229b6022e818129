package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/ec2emu"
	"github.com/mailfw/mailfw/internal/ecsemu"
)

// cloudCLI runs mailfw on the host (no namespace: it talks HTTP to an
// emulator on 127.0.0.1) with a credential environment of its own, so no
// credential of the machine and no metadata address is ever used.
func cloudCLI(t *testing.T, env ...string) *cli {
	home := t.TempDir()
	base := []string{"HOME=" + home,
		"AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none",
		"AWS_EC2_METADATA_DISABLED=true", "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true",
		"AWS_PROFILE=", "AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_EC2=",
		"AWS_SESSION_TOKEN=", "AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=",
		"ALIBABA_CLOUD_PROFILE=", "ALIBABA_CLOUD_SECURITY_TOKEN=", "ALIBABA_CLOUD_ECS_METADATA=",
		"HTTP_PROXY=", "HTTPS_PROXY=", "http_proxy=", "https_proxy="}
	return &cli{t: t, dir: t.TempDir(), env: append(base, env...)}
}

const awsPolicy = `version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
allow:
  - port: smtp
    from: [anywhere]
    description: inbound mail
  - port: submission
    from: [office]
    description: office clients
targets:
  - name: prod
    type: aws
    region: us-east-1
    security_groups: [{{SG}}]
    endpoint: {{URL}}
`

func TestCLI_awsPlanApplyPlan(t *testing.T) {
	emu := ec2emu.New(ec2emu.WithCredentials("AKIDMAILFWCLI0000001", "cli-secret"))
	t.Cleanup(emu.Close)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	c := cloudCLI(t, "AWS_ACCESS_KEY_ID=AKIDMAILFWCLI0000001", "AWS_SECRET_ACCESS_KEY=cli-secret")
	c.write("mailfw.yaml", strings.NewReplacer("{{SG}}", g.ID, "{{URL}}", emu.URL).Replace(awsPolicy))

	r := c.mailfw("", "plan", "--detailed-exitcode")
	c.expect(r, 2, "Target prod (aws", "+ allow ipv4 tcp/25 from 0.0.0.0/0", "+ allow ipv6 tcp/587 from 2001:db8:10::/48",
		"Plan: 4 to add, 0 to change, 0 to remove.", "aws-outbound-25")
	c.expect(c.mailfw("", "apply", "--auto-approve"), 0, "Apply complete: 4 added")
	c.expect(c.mailfw("", "plan", "--detailed-exitcode"), 0, "No changes.")

	var owned int
	for _, rule := range emu.IngressRules("us-east-1", g.ID) {
		if strings.HasPrefix(rule.Description, "mailfw") {
			owned++
		}
	}
	if owned != 4 {
		t.Errorf("%d mailfw rules in the group, want 4: %+v", owned, emu.IngressRules("us-east-1", g.ID))
	}
	if strings.Contains(r.stdout+r.stderr, "cli-secret") {
		t.Error("the secret key appears in the output")
	}
}

func TestCLI_awsDenyEntryIsAnError(t *testing.T) {
	emu := ec2emu.New(ec2emu.WithCredentials("AKIDMAILFWCLI0000001", "cli-secret"))
	t.Cleanup(emu.Close)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	c := cloudCLI(t, "AWS_ACCESS_KEY_ID=AKIDMAILFWCLI0000001", "AWS_SECRET_ACCESS_KEY=cli-secret")
	policy := strings.NewReplacer("{{SG}}", g.ID, "{{URL}}", emu.URL).Replace(awsPolicy) +
		"deny:\n  - port: smtp\n    from: [192.0.2.1]\n"
	c.write("mailfw.yaml", policy)
	c.expect(c.mailfw("", "plan"), 1, "mailfw.yaml:18:5: deny[0]: a target of type aws can only allow")
	c.expect(c.mailfw("", "validate"), 1, "target prod (aws):", "mailfw.yaml:18:5: deny[0]: a target of type aws can only allow")
	if n := len(emu.Requests()); n > 2 {
		t.Errorf("%d API calls for a policy refused before any write", n)
	}
}

func TestCLI_awsWrongSecretIsOneClearError(t *testing.T) {
	emu := ec2emu.New(ec2emu.WithCredentials("AKIDMAILFWCLI0000001", "cli-secret"))
	t.Cleanup(emu.Close)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	c := cloudCLI(t, "AWS_ACCESS_KEY_ID=AKIDMAILFWCLI0000001", "AWS_SECRET_ACCESS_KEY=wrong-secret")
	c.write("mailfw.yaml", strings.NewReplacer("{{SG}}", g.ID, "{{URL}}", emu.URL).Replace(awsPolicy))
	r := c.mailfw("", "plan")
	c.expect(r, 1, "AuthFailure")
	if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "wrong-secret") {
		t.Errorf("stack trace or secret in the error:\n%s", r)
	}
}

const alibabaPolicy = `version: 1
allow:
  - port: smtp
    from: [anywhere]
  - port: smtps
    from: [198.51.100.10]
    description: partner relay
targets:
  - name: cn
    type: alibaba
    region: cn-hangzhou
    security_groups: [{{SG}}]
    endpoint: {{URL}}
`

func TestCLI_alibabaPlanApplyPlan(t *testing.T) {
	emu := ecsemu.New()
	emu.AddAccessKey("LTAIcliTestKey0001", "cli-ali-secret", "")
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	gid, err := emu.AddGroup(ecsemu.Group{Region: "cn-hangzhou", VpcID: "vpc-bp1clitest000001"})
	if err != nil {
		t.Fatal(err)
	}
	c := cloudCLI(t, "ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIcliTestKey0001", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=cli-ali-secret")
	c.write("mailfw.yaml", strings.NewReplacer("{{SG}}", gid, "{{URL}}", srv.URL).Replace(alibabaPolicy))
	c.expect(c.mailfw("", "plan", "--detailed-exitcode"), 2, "Plan: 3 to add", "alibaba-outbound-25")
	c.expect(c.mailfw("", "apply", "--auto-approve"), 0, "Apply complete: 3 added")
	c.expect(c.mailfw("", "plan", "--detailed-exitcode"), 0, "No changes.")
	if n := len(emu.Rules(gid)); n < 3 {
		t.Errorf("%d rules in the group after apply, want at least 3", n)
	}

	// A drop at the same priority shadows the relay's accept: the plan
	// refuses to pretend the port is open.
	if _, err := emu.AddRule(gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "465/465", SourceCidrIp: "198.51.100.0/24",
		Policy: "Drop", Priority: 1, NicType: "intranet", Description: "blocked partner range"}); err != nil {
		t.Fatal(err)
	}
	c.write("mailfw.yaml", strings.NewReplacer("{{SG}}", gid, "{{URL}}", srv.URL).Replace(
		strings.Replace(alibabaPolicy, "partner relay", "partner relay B", 1)))
	c.expect(c.mailfw("", "plan"), 1, "would be dead", "198.51.100.0/24")
}
