package ecsemu_test

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/mailfw/mailfw/internal/ecsemu"
)

const (
	region = "cn-hangzhou"
	akID   = "LTAIexampleAccessKey"
	secret = "example-secret-value"
)

// setup starts an emulator on 127.0.0.1 and a real SDK client aimed at it.
func setup(t *testing.T) (*ecsemu.Emulator, *ecs.Client) {
	t.Helper()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, "")
	}
	emu := ecsemu.New()
	emu.AddAccessKey(akID, secret, "")
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, client(t, srv, akID, secret)
}

func client(t *testing.T, srv *httptest.Server, id, sk string) *ecs.Client {
	t.Helper()
	c, err := ecs.NewClientWithAccessKey(region, id, sk)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	c.Domain = u.Host
	return c
}

func serverError(t *testing.T, err error) *sdkerrors.ServerError {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want a ServerError, got %T: %v", err, err)
	}
	return se
}

func TestSign_documentedVector(t *testing.T) {
	p := url.Values{}
	for k, v := range map[string]string{
		"Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
		"Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
		"SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
		"SignatureVersion": "1.0",
	} {
		p.Set(k, v)
	}
	if got := ecsemu.Sign(ecsemu.StringToSign("GET", p), "testsecret"); got != "OLeaidS1JvxuMvnyHOwuJ+uX5qY=" {
		t.Errorf("signature = %s, want the documented OLeaidS1JvxuMvnyHOwuJ+uX5qY=", got)
	}
}

func TestAuth_wrongSecretAndUnknownKey(t *testing.T) {
	emu, _ := setup(t)
	srv := httptest.NewServer(emu)
	defer srv.Close()

	_, err := client(t, srv, akID, "not-the-secret").DescribeSecurityGroups(describeGroups())
	se := serverError(t, err)
	if se.ErrorCode() != "SignatureDoesNotMatch" || se.HttpStatus() != 400 {
		t.Errorf("wrong secret: got %s/%d", se.ErrorCode(), se.HttpStatus())
	}
	if !strings.Contains(se.Recommend(), "AccessKeySecret") {
		t.Errorf("the SDK did not recognise a wrong secret from the server string to sign: %q", se.Recommend())
	}

	_, err = client(t, srv, "LTAIunknown", secret).DescribeSecurityGroups(describeGroups())
	se = serverError(t, err)
	if se.ErrorCode() != "InvalidAccessKeyId.NotFound" || se.HttpStatus() != 404 {
		t.Errorf("unknown key: got %s/%d", se.ErrorCode(), se.HttpStatus())
	}
}

func TestAuth_securityTokenRequired(t *testing.T) {
	emu, _ := setup(t)
	emu.AddAccessKey("STS.example", "sts-secret", "token-1")
	srv := httptest.NewServer(emu)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	for _, tc := range []struct {
		name, token, code string
	}{
		{"right-token", "token-1", ""},
		{"wrong-token", "token-2", "InvalidSecurityToken.MismatchWithAccessKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ecs.NewClientWithStsToken(region, "STS.example", "sts-secret", tc.token)
			if err != nil {
				t.Fatal(err)
			}
			c.Domain = u.Host
			_, err = c.DescribeSecurityGroups(describeGroups())
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if se := serverError(t, err); se.ErrorCode() != tc.code {
				t.Errorf("code = %s, want %s", se.ErrorCode(), tc.code)
			}
		})
	}
}

func describeGroups() *ecs.DescribeSecurityGroupsRequest {
	r := ecs.CreateDescribeSecurityGroupsRequest()
	r.RegionId = region
	return r
}

func TestDescribeSecurityGroups_tagsVPCRegionAndBothPagingSchemes(t *testing.T) {
	emu, c := setup(t)
	want := map[string]bool{}
	for i := 0; i < 25; i++ {
		tags := map[string]string{"role": "web"}
		if i%2 == 0 {
			tags["role"] = "mx"
		}
		id := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a", Tags: tags})
		if i%2 == 0 {
			want[id] = true
		}
	}
	emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-b", Tags: map[string]string{"role": "mx"}})
	emu.MustAddGroup(ecsemu.Group{Region: "cn-beijing", VpcID: "vpc-a", Tags: map[string]string{"role": "mx"}})

	t.Run("next-token", func(t *testing.T) {
		got := map[string]bool{}
		token := ""
		for page := 0; ; page++ {
			r := describeGroups()
			r.VpcId = "vpc-a"
			r.Tag = &[]ecs.DescribeSecurityGroupsTag{{Key: "role", Value: "mx"}}
			r.MaxResults = requests.NewInteger(5)
			r.NextToken = token
			resp, err := c.DescribeSecurityGroups(r)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range resp.SecurityGroups.SecurityGroup {
				got[g.SecurityGroupId] = true
				if len(g.Tags.Tag) != 1 || g.Tags.Tag[0].TagKey != "role" || g.Tags.Tag[0].TagValue != "mx" {
					t.Errorf("tags of %s = %+v", g.SecurityGroupId, g.Tags.Tag)
				}
			}
			if token = resp.NextToken; token == "" {
				if page != 2 {
					t.Errorf("13 groups at 5 a page took %d pages", page+1)
				}
				break
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
	})
	t.Run("page-number", func(t *testing.T) {
		r := describeGroups()
		r.VpcId = "vpc-a"
		r.Tag = &[]ecs.DescribeSecurityGroupsTag{{Key: "role", Value: "mx"}}
		r.PageSize = requests.NewInteger(10)
		r.PageNumber = requests.NewInteger(2)
		resp, err := c.DescribeSecurityGroups(r)
		if err != nil {
			t.Fatal(err)
		}
		if resp.TotalCount != 13 || len(resp.SecurityGroups.SecurityGroup) != 3 || resp.PageNumber != 2 {
			t.Errorf("page 2: total %d, %d groups, page %d", resp.TotalCount,
				len(resp.SecurityGroups.SecurityGroup), resp.PageNumber)
		}
	})
	t.Run("page-size-too-big", func(t *testing.T) {
		r := describeGroups()
		r.PageSize = requests.NewInteger(51)
		_, err := c.DescribeSecurityGroups(r)
		if se := serverError(t, err); se.HttpStatus() != 400 {
			t.Errorf("status %d", se.HttpStatus())
		}
	})
}

func authorize(gid string, perms ...ecs.AuthorizeSecurityGroupPermissions) *ecs.AuthorizeSecurityGroupRequest {
	r := ecs.CreateAuthorizeSecurityGroupRequest()
	r.RegionId = region
	r.SecurityGroupId = gid
	r.Permissions = &perms
	return r
}

func TestAuthorize_duplicateIsSilentAndAddsNothing(t *testing.T) {
	emu, c := setup(t)
	gid := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a"})
	p := ecs.AuthorizeSecurityGroupPermissions{IpProtocol: "tcp", PortRange: "25/25",
		SourceCidrIp: "192.0.2.0/24", Policy: "accept", Priority: "1", Description: "mailfw"}
	if _, err := c.AuthorizeSecurityGroup(authorize(gid, p)); err != nil {
		t.Fatal(err)
	}
	p.Description = "someone else"
	p.NicType = "internet" // a VPC group turns this into intranet: still the same rule
	if _, err := c.AuthorizeSecurityGroup(authorize(gid, p)); err != nil {
		t.Fatalf("duplicate authorize: %v", err)
	}
	rules := emu.IngressRules(gid)
	if len(rules) != 1 || rules[0].Description != "mailfw" || rules[0].NicType != "intranet" {
		t.Errorf("rules after a duplicate add: %+v", rules)
	}

	_, err := c.AuthorizeSecurityGroup(authorize(gid, p, p))
	if se := serverError(t, err); se.ErrorCode() != "InvalidParam.DuplicatePermissions" {
		t.Errorf("duplicate within a request: %s", se.ErrorCode())
	}
}

func TestAuthorize_validationCodes(t *testing.T) {
	emu, c := setup(t)
	gid := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a"})
	ok := ecs.AuthorizeSecurityGroupPermissions{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "192.0.2.1"}
	tests := []struct {
		name   string
		edit   func(*ecs.AuthorizeSecurityGroupPermissions)
		status int
		code   string
	}{
		{"bad-port-format", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.PortRange = "25" }, 400, "InvalidParam.PortRange"},
		{"reversed-ports", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.PortRange = "200/1" }, 400, "InvalidParam.PortRange"},
		{"all-with-ports", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.IpProtocol = "ALL" }, 400, "OperationDenied"},
		{"bad-protocol", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.IpProtocol = "SCTP" }, 400, "InvalidIpProtocol.ValueNotSupported"},
		{"no-source", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.SourceCidrIp = "" }, 400, "MissingParameter.Source"},
		{"both-families", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.Ipv6SourceCidrIp = "2001:db8::/32" }, 400, "InvalidParam.SourceIp"},
		{"bad-v4", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.SourceCidrIp = "2001:db8::/32" }, 400, "InvalidSourceCidrIp.Malformed"},
		{"bad-policy", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.Policy = "reject" }, 400, "InvalidPolicy.Malformed"},
		{"priority-101", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.Priority = "101" }, 400, "InvalidPriority.ValueNotSupported"},
		{"long-description", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.Description = strings.Repeat("x", 513) }, 400, "InvalidSecurityGroupDiscription.Malformed"},
		{"bad-nic-type", func(p *ecs.AuthorizeSecurityGroupPermissions) { p.NicType = "public" }, 400, "InvalidNicType.ValueNotSupported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			_, err := c.AuthorizeSecurityGroup(authorize(gid, p))
			se := serverError(t, err)
			if se.ErrorCode() != tc.code || se.HttpStatus() != tc.status {
				t.Errorf("got %s/%d, want %s/%d", se.ErrorCode(), se.HttpStatus(), tc.code, tc.status)
			}
		})
	}
	if n := len(emu.IngressRules(gid)); n != 0 {
		t.Errorf("%d rules were added by refused calls", n)
	}

	t.Run("mixed-forms", func(t *testing.T) {
		r := authorize(gid, ok)
		r.PortRange = "25/25"
		_, err := c.AuthorizeSecurityGroup(r)
		if se := serverError(t, err); se.ErrorCode() != "InvalidParam.Permissions" {
			t.Errorf("code %s", se.ErrorCode())
		}
	})
	t.Run("unknown-and-malformed-group", func(t *testing.T) {
		_, err := c.AuthorizeSecurityGroup(authorize("sg-bp1doesnotexist", ok))
		if se := serverError(t, err); se.ErrorCode() != "InvalidSecurityGroupId.NotFound" || se.HttpStatus() != 404 {
			t.Errorf("unknown: %s/%d", se.ErrorCode(), se.HttpStatus())
		}
		_, err = c.AuthorizeSecurityGroup(authorize("group-1", ok))
		if se := serverError(t, err); se.ErrorCode() != "InvalidSecurityGroupId.Malformed" {
			t.Errorf("malformed: %s", se.ErrorCode())
		}
	})
	t.Run("other-region", func(t *testing.T) {
		bj := emu.MustAddGroup(ecsemu.Group{Region: "cn-beijing", VpcID: "vpc-b"})
		_, err := c.AuthorizeSecurityGroup(authorize(bj, ok))
		if se := serverError(t, err); se.ErrorCode() != "InvalidSecurityGroupId.NotFound" {
			t.Errorf("group of another region: %s", se.ErrorCode())
		}
	})
}

func TestAuthorize_quotaCountsEgressToo(t *testing.T) {
	emu, c := setup(t)
	emu.SetQuota(3)
	gid := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a"})
	if _, err := emu.AddRule(gid, ecsemu.Rule{Direction: "egress", IpProtocol: "ALL", PortRange: "-1/-1"}); err != nil {
		t.Fatal(err)
	}
	p1 := ecs.AuthorizeSecurityGroupPermissions{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "192.0.2.0/24"}
	p2, p3 := p1, p1
	p2.PortRange, p3.PortRange = "587/587", "465/465"
	_, err := c.AuthorizeSecurityGroup(authorize(gid, p1, p2, p3))
	se := serverError(t, err)
	if se.ErrorCode() != "AuthorizationLimitExceed" || se.HttpStatus() != 403 {
		t.Errorf("got %s/%d", se.ErrorCode(), se.HttpStatus())
	}
	if _, err := c.AuthorizeSecurityGroup(authorize(gid, p1, p2)); err != nil {
		t.Errorf("two rules fit under a quota of 3 with one egress rule: %v", err)
	}
}

func TestDescribeAttribute_fieldsPriorityAndPaging(t *testing.T) {
	emu, c := setup(t)
	gid := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a", Name: "mail"})
	for i := 1; i <= 25; i++ {
		if _, err := emu.AddRule(gid, ecsemu.Rule{IpProtocol: "tcp", PortRange: "25/25",
			SourceCidrIp: "192.0.2." + strconv.Itoa(i), Priority: i, Policy: "Drop"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := emu.AddRule(gid, ecsemu.Rule{Direction: "egress", IpProtocol: "ALL", PortRange: "-1/-1"}); err != nil {
		t.Fatal(err)
	}
	for _, asString := range []bool{false, true} {
		emu.SetPriorityAsString(asString)
		var got []ecs.Permission
		token, calls := "", 0
		for {
			r := ecs.CreateDescribeSecurityGroupAttributeRequest()
			r.RegionId, r.SecurityGroupId, r.Direction = region, gid, "ingress"
			r.MaxResults = requests.NewInteger(10)
			r.NextToken = token
			resp, err := c.DescribeSecurityGroupAttribute(r)
			if err != nil {
				t.Fatal(err)
			}
			calls++
			got = append(got, resp.Permissions.Permission...)
			if token = resp.NextToken; token == "" {
				break
			}
		}
		if len(got) != 25 || calls != 3 {
			t.Fatalf("string=%t: %d rules in %d calls, want 25 in 3", asString, len(got), calls)
		}
		p := got[4]
		if p.Priority != "5" || p.Policy != "Drop" || p.IpProtocol != "TCP" || p.NicType != "intranet" ||
			p.Direction != "ingress" || !strings.HasPrefix(p.SecurityGroupRuleId, "sgr-") ||
			!strings.HasSuffix(p.CreateTime, "Z") {
			t.Errorf("string=%t: permission %+v", asString, p)
		}
	}
}

func TestRevoke_unknownIDFailsAndChangesNothing(t *testing.T) {
	emu, c := setup(t)
	gid := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a"})
	id, _ := emu.AddRule(gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "0.0.0.0/0"})
	revoke := func(ids ...string) error {
		r := ecs.CreateRevokeSecurityGroupRequest()
		r.RegionId, r.SecurityGroupId = region, gid
		r.SecurityGroupRuleId = &ids
		_, err := c.RevokeSecurityGroup(r)
		return err
	}
	if se := serverError(t, revoke(id, "sgr-bp1unknownrule000")); se.ErrorCode() != "InvalidParam.SecurityGroupRuleId" {
		t.Errorf("unknown id: %s", se.ErrorCode())
	}
	if se := serverError(t, revoke(id, id)); se.ErrorCode() != "InvalidParam.SecurityGroupRuleIdRepeated" {
		t.Errorf("repeated id: %s", se.ErrorCode())
	}
	if n := len(emu.IngressRules(gid)); n != 1 {
		t.Fatalf("refused revokes removed rules: %d left", n)
	}
	if err := revoke(id); err != nil {
		t.Fatal(err)
	}
	if n := len(emu.IngressRules(gid)); n != 0 {
		t.Errorf("%d rules left after revoke", n)
	}
}

func TestModify_descriptionOnlyAndRefusals(t *testing.T) {
	emu, c := setup(t)
	gid := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a"})
	id, _ := emu.AddRule(gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "192.0.2.0/24",
		Priority: 7, Description: "mailfw"})
	emu.AddRule(gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "587/587", SourceCidrIp: "192.0.2.0/24"})
	modify := func(edit func(*ecs.ModifySecurityGroupRuleRequest)) error {
		r := ecs.CreateModifySecurityGroupRuleRequest()
		r.RegionId, r.SecurityGroupId, r.SecurityGroupRuleId = region, gid, id
		edit(r)
		_, err := c.ModifySecurityGroupRule(r)
		return err
	}
	if err := modify(func(r *ecs.ModifySecurityGroupRuleRequest) { r.Description = "mailfw: relays" }); err != nil {
		t.Fatal(err)
	}
	got := emu.IngressRules(gid)[1] // priority 7 lists after priority 1
	if got.ID != id || got.Description != "mailfw: relays" || got.Priority != 7 || got.PortRange != "25/25" {
		t.Errorf("after a description-only modify: %+v", got)
	}
	if se := serverError(t, modify(func(r *ecs.ModifySecurityGroupRuleRequest) {
		r.Ipv6SourceCidrIp = "2001:db8::/32"
	})); se.ErrorCode() != "InvalidOperation.ModifySgRuleEntityType" {
		t.Errorf("family change: %s", se.ErrorCode())
	}
	if se := serverError(t, modify(func(r *ecs.ModifySecurityGroupRuleRequest) {
		r.PortRange = "587/587"
	})); se.ErrorCode() != "InvalidOperation.RuleDuplicate" {
		t.Errorf("duplicate: %s", se.ErrorCode())
	}
}

func TestFaults_throttleServerErrorBrokenBodyAndRecording(t *testing.T) {
	emu, c := setup(t)
	gid := emu.MustAddGroup(ecsemu.Group{Region: region, VpcID: "vpc-a"})

	emu.FailNext(2, ecsemu.Throttling("DescribeSecurityGroups"))
	for i := 0; i < 2; i++ {
		_, err := c.DescribeSecurityGroups(describeGroups())
		if se := serverError(t, err); se.ErrorCode() != "Throttling" || se.HttpStatus() != 400 {
			t.Errorf("call %d: %s/%d", i, se.ErrorCode(), se.HttpStatus())
		}
	}
	if _, err := c.DescribeSecurityGroups(describeGroups()); err != nil {
		t.Errorf("third call after two throttles: %v", err)
	}

	emu.FailNext(1, ecsemu.ServiceUnavailable(""))
	_, err := c.DescribeSecurityGroups(describeGroups())
	if se := serverError(t, err); se.HttpStatus() != 503 {
		t.Errorf("503 fault: %d", se.HttpStatus())
	}

	emu.FailNext(1, ecsemu.BrokenBody("AuthorizeSecurityGroup"))
	_, err = c.AuthorizeSecurityGroup(authorize(gid, ecs.AuthorizeSecurityGroupPermissions{
		IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "0.0.0.0/0"}))
	var ce *sdkerrors.ClientError
	if !errors.As(err, &ce) || ce.ErrorCode() != sdkerrors.JsonUnmarshalErrorCode {
		t.Errorf("broken body: %T %v", err, err)
	}
	if n := len(emu.IngressRules(gid)); n != 1 {
		t.Errorf("a broken body still serves the call: %d rules", n)
	}

	reqs := emu.Requests()
	last := reqs[len(reqs)-1]
	if last.Action != "AuthorizeSecurityGroup" || last.Params.Get("Permissions.1.PortRange") != "25/25" ||
		last.Params.Get("SecurityGroupId") != gid || last.Params.Get("RegionId") != region {
		t.Errorf("recorded request: %+v", last)
	}
	want := map[string]int{"DescribeSecurityGroups": 4, "AuthorizeSecurityGroup": 1}
	if diff := cmp.Diff(want, emu.CallCounts()); diff != "" {
		t.Errorf("call counts (-want +got):\n%s", diff)
	}
}

func TestFaults_seededFraction(t *testing.T) {
	emu, c := setup(t)
	emu.FailFraction(0.3, 7, ecsemu.Throttling(""))
	throttled := 0
	for i := 0; i < 200; i++ {
		if _, err := c.DescribeSecurityGroups(describeGroups()); err != nil {
			if serverError(t, err).ErrorCode() != "Throttling" {
				t.Fatal(err)
			}
			throttled++
		}
	}
	if throttled < 40 || throttled > 80 {
		t.Errorf("%d of 200 calls throttled at a fraction of 0.3", throttled)
	}
}
