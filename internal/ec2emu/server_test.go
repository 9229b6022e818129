package ec2emu_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/mailfw/mailfw/internal/ec2emu"
)

const (
	testKey    = "AKIDEMULATORTEST0001"
	testSecret = "emulator-test-secret"
)

func newServer(t *testing.T, opts ...ec2emu.Option) *ec2emu.Server {
	t.Helper()
	s := ec2emu.New(append([]ec2emu.Option{ec2emu.WithCredentials(testKey, testSecret)}, opts...)...)
	t.Cleanup(s.Close)
	return s
}

// client builds a real SDK client with static credentials, no IMDS and a
// zero-delay retryer of maxAttempts.
func client(s *ec2emu.Server, region, secret string, maxAttempts int) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(testKey, secret, ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
}

func apiCode(t *testing.T, err error) (string, int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	var st interface{ HTTPStatusCode() int }
	if !errors.As(err, &st) {
		t.Fatalf("error %v has no HTTP status", err)
	}
	return ae.ErrorCode(), st.HTTPStatusCode()
}

func wantCode(t *testing.T, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	c, st := apiCode(t, err)
	if c != code || st != status {
		t.Fatalf("got %s/%d, want %s/%d (%v)", c, st, code, status, err)
	}
}

func tcpPerm(port int32, cidrs ...string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	for _, c := range cidrs {
		p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(c)})
	}
	return p
}

func TestCreateGroup_hasDefaultEgressAndTags(t *testing.T) {
	s := newServer(t)
	c := client(s, "us-east-1", testSecret, 1)
	ctx := context.Background()
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("mx"), Description: aws.String("mail"),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSecurityGroup,
			Tags:         []types.Tag{{Key: aws.String("role"), Value: aws.String("mx")}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{{Name: aws.String("tag:role"), Values: []string{"mx"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.SecurityGroups) != 1 || *d.SecurityGroups[0].GroupId != *out.GroupId {
		t.Fatalf("tag filter found %+v", d.SecurityGroups)
	}
	eg := d.SecurityGroups[0].IpPermissionsEgress
	if len(eg) != 1 || *eg[0].IpProtocol != "-1" || eg[0].FromPort != nil ||
		*eg[0].IpRanges[0].CidrIp != "0.0.0.0/0" {
		t.Fatalf("default egress = %+v", eg)
	}
	if len(d.SecurityGroups[0].IpPermissions) != 0 {
		t.Fatalf("new group has ingress %+v", d.SecurityGroups[0].IpPermissions)
	}
}

func TestAuthorize_wireParamsRulesAndTags(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	ref := s.SeedGroup("us-east-1", ec2emu.Group{})
	pl := s.SeedPrefixList("us-east-1", ec2emu.PrefixList{MaxEntries: 5})
	c := client(s, "us-east-1", testSecret, 1)
	perm := tcpPerm(465, "203.0.113.7/24")
	perm.IpRanges[0].Description = aws.String("mailfw: office")
	perm.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String("2001:db8::/32")}}
	perm.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(ref.ID)}}
	perm.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String(pl.ID)}}
	out, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(g.ID),
		IpPermissions: []types.IpPermission{perm},
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSecurityGroupRule,
			Tags:         []types.Tag{{Key: aws.String("managed-by"), Value: aws.String("mailfw")}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecurityGroupRules) != 4 {
		t.Fatalf("got %d rules back, want one per source", len(out.SecurityGroupRules))
	}
	r0 := out.SecurityGroupRules[0]
	if *r0.CidrIpv4 != "203.0.113.0/24" || *r0.Description != "mailfw: office" ||
		*r0.Tags[0].Key != "managed-by" || *r0.IsEgress {
		t.Fatalf("first rule = %+v", r0)
	}
	if got := out.SecurityGroupRules[3].ReferencedGroupInfo; got == nil || *got.GroupId != ref.ID ||
		*got.UserId != ec2emu.DefaultAccount {
		t.Fatalf("referenced group = %+v", got)
	}
	reqs := s.Requests()
	p := reqs[len(reqs)-1].Params
	want := map[string]string{
		"IpPermissions.1.IpRanges.1.CidrIp":            "203.0.113.7/24",
		"IpPermissions.1.Ipv6Ranges.1.CidrIpv6":        "2001:db8::/32",
		"IpPermissions.1.Groups.1.GroupId":             ref.ID,
		"IpPermissions.1.PrefixListIds.1.PrefixListId": pl.ID,
		"TagSpecification.1.ResourceType":              "security-group-rule",
		"TagSpecification.1.Tag.1.Key":                 "managed-by",
	}
	for k, v := range want {
		if p.Get(k) != v {
			t.Errorf("wire %s = %q, want %q", k, p.Get(k), v)
		}
	}
}

func TestAuthorize_duplicateAndQuotaAreAtomic(t *testing.T) {
	s := newServer(t, ec2emu.WithQuota(3))
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	c := client(s, "us-east-1", testSecret, 1)
	ctx := context.Background()
	add := func(perms ...types.IpPermission) error {
		_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(g.ID), IpPermissions: perms})
		return err
	}
	if err := add(tcpPerm(25, "192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, add(tcpPerm(587, "198.51.100.0/24"), tcpPerm(25, "192.0.2.9/24")),
		"InvalidPermission.Duplicate", 400)
	wantCode(t, add(tcpPerm(587, "198.51.100.0/24", "198.51.100.0/24")), "InvalidParameterValue", 400)
	wantCode(t, add(tcpPerm(587, "198.51.100.0/24", "198.51.100.1/32", "198.51.100.2/32")),
		"RulesPerSecurityGroupLimitExceeded", 400)
	// An IPv6 rule does not use the IPv4 quota.
	v6 := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(25), ToPort: aws.Int32(25),
		Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("2001:db8::/32")}}}
	if err := add(v6); err != nil {
		t.Fatal(err)
	}
	if n := len(s.IngressRules("us-east-1", g.ID)); n != 2 {
		t.Fatalf("failed calls changed the group: %d ingress rules, want 2", n)
	}
}

func TestPrefixList_countsMaxEntriesAgainstQuota(t *testing.T) {
	s := newServer(t, ec2emu.WithQuota(10))
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	pl := s.SeedPrefixList("us-east-1", ec2emu.PrefixList{MaxEntries: 10})
	if _, err := s.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
		FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	c := client(s, "us-east-1", testSecret, 1)
	_, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(g.ID),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(25),
			ToPort: aws.Int32(25), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String(pl.ID)}}}},
	})
	wantCode(t, err, "RulesPerSecurityGroupLimitExceeded", 400)
	d, err := c.DescribeManagedPrefixLists(context.Background(), &ec2.DescribeManagedPrefixListsInput{
		PrefixListIds: []string{pl.ID}})
	if err != nil || len(d.PrefixLists) != 1 || *d.PrefixLists[0].MaxEntries != 10 {
		t.Fatalf("DescribeManagedPrefixLists = %+v, %v", d, err)
	}
}

func TestDescribeGroups_mergesRulesByProtocolAndPorts(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("eu-west-1", ec2emu.Group{})
	for _, r := range []ec2emu.Rule{
		{Protocol: "tcp", FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24", Description: "a"},
		{Protocol: "tcp", FromPort: 25, ToPort: 25, CIDRv6: "2001:db8::/32"},
		{Protocol: "-1", CIDRv4: "198.51.100.0/24"},
	} {
		r.GroupID = g.ID
		if _, err := s.SeedRule("eu-west-1", r); err != nil {
			t.Fatal(err)
		}
	}
	c := client(s, "eu-west-1", testSecret, 1)
	d, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		GroupIds: []string{g.ID}})
	if err != nil {
		t.Fatal(err)
	}
	in := d.SecurityGroups[0].IpPermissions
	if len(in) != 2 || len(in[0].IpRanges) != 1 || len(in[0].Ipv6Ranges) != 1 ||
		*in[0].IpRanges[0].Description != "a" || in[1].FromPort != nil {
		t.Fatalf("ipPermissions = %+v", in)
	}
	rules, err := c.DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{g.ID}}}})
	if err != nil {
		t.Fatal(err)
	}
	last := rules.SecurityGroupRules[len(rules.SecurityGroupRules)-1]
	if len(rules.SecurityGroupRules) != 4 || *last.FromPort != -1 || *last.ToPort != -1 {
		t.Fatalf("rules = %d, last %+v", len(rules.SecurityGroupRules), last)
	}
}

func TestDescribeRules_pagesWithMaxResults(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	for i := range 11 {
		if _, err := s.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
			FromPort: 1000 + i, ToPort: 1000 + i, CIDRv4: "192.0.2.0/24"}); err != nil {
			t.Fatal(err)
		}
	}
	c := client(s, "us-east-1", testSecret, 1)
	pg := ec2.NewDescribeSecurityGroupRulesPaginator(c, &ec2.DescribeSecurityGroupRulesInput{
		Filters:    []types.Filter{{Name: aws.String("group-id"), Values: []string{g.ID}}},
		MaxResults: aws.Int32(5),
	})
	var got int
	for pg.HasMorePages() {
		out, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got += len(out.SecurityGroupRules)
	}
	if got != 12 || s.Calls("DescribeSecurityGroupRules") != 3 {
		t.Fatalf("got %d rules in %d calls, want 12 in 3", got, s.Calls("DescribeSecurityGroupRules"))
	}
	_, err := c.DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		NextToken: aws.String("forged"), MaxResults: aws.Int32(5)})
	wantCode(t, err, "InvalidPaginationToken", 400)
	_, err = c.DescribeSecurityGroupRules(context.Background(), &ec2.DescribeSecurityGroupRulesInput{
		MaxResults: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterValue", 400)
}

func TestRevoke_notFoundSemantics(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	id, err := s.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
		FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	c := client(s, "us-east-1", testSecret, 1)
	ctx := context.Background()
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(g.ID), SecurityGroupRuleIds: []string{id, "sgr-00000000000000bad"}})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound", 400)
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(g.ID), IpPermissions: []types.IpPermission{tcpPerm(587, "192.0.2.0/24")}})
	wantCode(t, err, "InvalidPermission.NotFound", 400)
	if len(s.IngressRules("us-east-1", g.ID)) != 1 {
		t.Fatal("a failed revoke removed a rule")
	}
	out, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(g.ID), IpPermissions: []types.IpPermission{tcpPerm(25, "192.0.2.0/24")}})
	if err != nil || len(out.RevokedSecurityGroupRules) != 1 || *out.RevokedSecurityGroupRules[0].SecurityGroupRuleId != id {
		t.Fatalf("revoke by properties = %+v, %v", out, err)
	}
}

func TestRevoke_defaultVPCListsUnknownPermissions(t *testing.T) {
	s := newServer(t, ec2emu.WithDefaultVPC())
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	if _, err := s.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
		FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	c := client(s, "us-east-1", testSecret, 1)
	out, err := c.RevokeSecurityGroupIngress(context.Background(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId:       aws.String(g.ID),
		IpPermissions: []types.IpPermission{tcpPerm(25, "192.0.2.0/24"), tcpPerm(587, "198.51.100.0/24")}})
	if err != nil {
		t.Fatalf("a default VPC refused the revoke: %v", err)
	}
	if len(out.RevokedSecurityGroupRules) != 1 || len(out.UnknownIpPermissions) != 1 {
		t.Fatalf("revoked %d, unknown %d; want 1 and 1", len(out.RevokedSecurityGroupRules), len(out.UnknownIpPermissions))
	}
	u := out.UnknownIpPermissions[0]
	if aws.ToInt32(u.FromPort) != 587 || len(u.IpRanges) != 1 || aws.ToString(u.IpRanges[0].CidrIp) != "198.51.100.0/24" {
		t.Fatalf("unknown permission = %+v", u)
	}
	if n := len(s.IngressRules("us-east-1", g.ID)); n != 0 {
		t.Fatalf("%d rules left, want the matching one revoked", n)
	}
}

func TestUpdateDescriptions_byRuleID(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	id, _ := s.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
		FromPort: 587, ToPort: 587, CIDRv4: "192.0.2.0/24", Description: "old"})
	c := client(s, "us-east-1", testSecret, 1)
	_, err := c.UpdateSecurityGroupRuleDescriptionsIngress(context.Background(),
		&ec2.UpdateSecurityGroupRuleDescriptionsIngressInput{
			GroupId: aws.String(g.ID),
			SecurityGroupRuleDescriptions: []types.SecurityGroupRuleDescription{{
				SecurityGroupRuleId: aws.String(id), Description: aws.String("mailfw: new")}},
		})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.IngressRules("us-east-1", g.ID)[0].Description; got != "mailfw: new" {
		t.Fatalf("description = %q", got)
	}
	_, err = c.UpdateSecurityGroupRuleDescriptionsIngress(context.Background(),
		&ec2.UpdateSecurityGroupRuleDescriptionsIngressInput{
			GroupId: aws.String(g.ID),
			SecurityGroupRuleDescriptions: []types.SecurityGroupRuleDescription{{
				SecurityGroupRuleId: aws.String(id), Description: aws.String("bad <char>")}},
		})
	wantCode(t, err, "InvalidParameterValue", 400)
}

func TestLookups_unknownAndMalformedGroups(t *testing.T) {
	s := newServer(t)
	c := client(s, "us-east-1", testSecret, 1)
	ctx := context.Background()
	_, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
	wantCode(t, err, "InvalidGroup.NotFound", 400)
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-nothex"}})
	wantCode(t, err, "InvalidGroupId.Malformed", 400)
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: []types.IpPermission{tcpPerm(25, "192.0.2.1/32")}})
	wantCode(t, err, "InvalidGroup.NotFound", 400)
}

func TestRegions_keepSeparateState(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("eu-west-1", ec2emu.Group{})
	_, err := client(s, "us-east-1", testSecret, 1).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{GroupIds: []string{g.ID}})
	wantCode(t, err, "InvalidGroup.NotFound", 400)
	out, err := client(s, "eu-west-1", testSecret, 1).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{GroupIds: []string{g.ID}})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("eu-west-1 lookup = %+v, %v", out, err)
	}
	if reqs := s.Requests(); reqs[0].Region != "us-east-1" || reqs[1].Region != "eu-west-1" {
		t.Fatalf("logged regions %q, %q", reqs[0].Region, reqs[1].Region)
	}
}

func TestAuth_wrongSecretIsAuthFailureAndNotRetried(t *testing.T) {
	s := newServer(t)
	_, err := client(s, "us-east-1", "wrong-secret", 3).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{})
	wantCode(t, err, "AuthFailure", http.StatusUnauthorized)
	if n := s.Calls(""); n != 1 {
		t.Fatalf("%d calls, want 1 (AuthFailure is not retryable)", n)
	}
	_, err = client(s, "us-east-1", testSecret, 1).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatalf("a correct signature was refused: %v", err)
	}
}

func TestFaults_throttleIsRetriedByTheSDK(t *testing.T) {
	s := newServer(t)
	s.FailNext("DescribeSecurityGroups", 2, "RequestLimitExceeded")
	_, err := client(s, "us-east-1", testSecret, 3).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, r := range s.Requests() {
		codes = append(codes, r.Code)
	}
	if diff := cmp.Diff([]string{"RequestLimitExceeded", "RequestLimitExceeded", ""}, codes); diff != "" {
		t.Fatalf("call outcomes (-want +got):\n%s", diff)
	}
	s.FailNext("", 3, "RequestLimitExceeded")
	_, err = client(s, "us-east-1", testSecret, 3).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{})
	wantCode(t, err, "RequestLimitExceeded", http.StatusServiceUnavailable)
}

func TestFaults_truncatedBodyIsAnErrorNotACrash(t *testing.T) {
	s := newServer(t)
	s.SeedGroup("us-east-1", ec2emu.Group{})
	s.TruncateNext("DescribeSecurityGroups", 1)
	_, err := client(s, "us-east-1", testSecret, 1).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{})
	if err == nil {
		t.Fatal("a truncated body decoded as success")
	}
}

func TestFaults_denyAndDryRun(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	c := client(s, "us-east-1", testSecret, 1)
	_, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(g.ID), DryRun: aws.Bool(true), IpPermissions: []types.IpPermission{tcpPerm(25, "192.0.2.1/32")}})
	wantCode(t, err, "DryRunOperation", http.StatusPreconditionFailed)
	s.Deny("AuthorizeSecurityGroupIngress")
	_, err = c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(g.ID), IpPermissions: []types.IpPermission{tcpPerm(25, "192.0.2.1/32")}})
	wantCode(t, err, "UnauthorizedOperation", http.StatusForbidden)
	if len(s.IngressRules("us-east-1", g.ID)) != 0 {
		t.Fatal("a refused call added a rule")
	}
}

func TestFaults_throttleFractionIsSeeded(t *testing.T) {
	run := func() []string {
		s := newServer(t)
		s.Throttle("", 0.3, 7)
		c := client(s, "us-east-1", testSecret, 1)
		for range 40 {
			c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{})
		}
		var codes []string
		for _, r := range s.Requests() {
			codes = append(codes, r.Code)
		}
		return codes
	}
	a, b := run(), run()
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different faults (-first +second):\n%s", diff)
	}
	n := 0
	for _, c := range a {
		if c == "RequestLimitExceeded" {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Fatalf("%d of %d calls throttled at fraction 0.3", n, len(a))
	}
}

func TestModifyRules_replacesRuleKeepingID(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	id, _ := s.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
		FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24"})
	c := client(s, "us-east-1", testSecret, 1)
	_, err := c.ModifySecurityGroupRules(context.Background(), &ec2.ModifySecurityGroupRulesInput{
		GroupId: aws.String(g.ID),
		SecurityGroupRules: []types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: aws.String(id),
			SecurityGroupRule: &types.SecurityGroupRuleRequest{IpProtocol: aws.String("tcp"),
				FromPort: aws.Int32(587), ToPort: aws.Int32(587), CidrIpv4: aws.String("198.51.100.0/24")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := s.IngressRules("us-east-1", g.ID)[0]
	if got.ID != id || got.FromPort != 587 || got.CIDRv4 != "198.51.100.0/24" {
		t.Fatalf("modified rule = %+v", got)
	}
	_, err = c.ModifySecurityGroupRules(context.Background(), &ec2.ModifySecurityGroupRulesInput{
		GroupId: aws.String(g.ID),
		SecurityGroupRules: []types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: aws.String(id),
			SecurityGroupRule: &types.SecurityGroupRuleRequest{IpProtocol: aws.String("tcp"),
				FromPort: aws.Int32(587), ToPort: aws.Int32(587), CidrIpv6: aws.String("2001:db8::/32")}}},
	})
	wantCode(t, err, "InvalidParameterValue", 400)
}

func TestAuth_regionOutsideWithRegionsIsRefused(t *testing.T) {
	s := newServer(t, ec2emu.WithRegions("us-east-1"))
	_, err := client(s, "eu-west-1", testSecret, 1).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{})
	wantCode(t, err, "AuthFailure", http.StatusUnauthorized)
	if _, err := client(s, "us-east-1", testSecret, 1).DescribeSecurityGroups(context.Background(),
		&ec2.DescribeSecurityGroupsInput{}); err != nil {
		t.Fatalf("allowed region refused: %v", err)
	}
}

func TestHooks_runBeforeTheNamedCall(t *testing.T) {
	s := newServer(t)
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	s.BeforeNext("AuthorizeSecurityGroupIngress", func() {
		if _, err := s.SeedRule("us-east-1", ec2emu.Rule{GroupID: g.ID, Protocol: "tcp",
			FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24"}); err != nil {
			t.Error(err)
		}
	})
	_, err := client(s, "us-east-1", testSecret, 1).AuthorizeSecurityGroupIngress(context.Background(),
		&ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(g.ID),
			IpPermissions: []types.IpPermission{tcpPerm(25, "192.0.2.0/24")}})
	wantCode(t, err, "InvalidPermission.Duplicate", 400)
	if got := s.Requests()[0].Code; got != "InvalidPermission.Duplicate" {
		t.Fatalf("logged code %q", got)
	}
}

func TestReset_dropsStateAndLogButKeepsOptions(t *testing.T) {
	s := newServer(t, ec2emu.WithQuota(1))
	g := s.SeedGroup("us-east-1", ec2emu.Group{})
	client(s, "us-east-1", testSecret, 1).DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{})
	s.Reset()
	if len(s.Groups("us-east-1")) != 0 || len(s.Requests()) != 0 {
		t.Fatal("Reset kept groups or requests")
	}
	g = s.SeedGroup("us-east-1", ec2emu.Group{})
	r := ec2emu.Rule{GroupID: g.ID, Protocol: "tcp", FromPort: 25, ToPort: 25, CIDRv4: "192.0.2.0/24"}
	if _, err := s.SeedRule("us-east-1", r); err != nil {
		t.Fatal(err)
	}
	r.CIDRv4 = "198.51.100.0/24"
	var ae *ec2emu.APIError
	if _, err := s.SeedRule("us-east-1", r); !errors.As(err, &ae) || ae.Code != "RulesPerSecurityGroupLimitExceeded" {
		t.Fatalf("quota after Reset: %v", err)
	}
}
