package alibaba

import (
	"context"
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/mailfw/mailfw/internal/ecsemu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

func TestObserve(t *testing.T) {
	vpc := groupInfo{ID: "sg-bp1a", VpcID: testVPC}
	classic := groupInfo{ID: "sg-bp1b"}
	base := ecs.Permission{SecurityGroupRuleId: "sgr-1", Direction: "ingress", IpProtocol: "TCP",
		PortRange: "25/25", SourceCidrIp: "192.0.2.7", Policy: "Accept", Priority: "1", NicType: "intranet"}
	v4 := func(edit func(*plan.Observed)) *plan.Observed {
		o := &plan.Observed{ID: "sgr-1", Family: plan.IPv4, Protocol: "tcp", PortFrom: 25, PortTo: 25,
			Source: "192.0.2.7/32", Verdict: plan.Allow, Order: 3, Origin: "priority 1"}
		edit(o)
		return o
	}
	tests := []struct {
		name string
		g    groupInfo
		edit func(*ecs.Permission)
		want *plan.Observed // nil: left out
	}{
		{"single-port-accept", vpc, func(p *ecs.Permission) {}, v4(func(o *plan.Observed) {})},
		{"drop-beats-accept-at-equal-priority", vpc, func(p *ecs.Permission) { p.Policy, p.Priority = "Drop", "7" },
			v4(func(o *plan.Observed) { o.Verdict, o.Order, o.Origin = plan.Deny, 14, "priority 7" })},
		{"range", vpc, func(p *ecs.Permission) { p.PortRange = "1/65535" },
			v4(func(o *plan.Observed) { o.PortFrom, o.PortTo = 1, 65535 })},
		{"all-protocols", vpc, func(p *ecs.Permission) { p.IpProtocol, p.PortRange = "ALL", "-1/-1" },
			v4(func(o *plan.Observed) { o.Protocol, o.PortFrom, o.PortTo = "all", 1, 65535 })},
		{"ipv6-owned", vpc, func(p *ecs.Permission) {
			p.SourceCidrIp, p.Ipv6SourceCidrIp, p.Description = "", "2001:DB8::1/48", "mailfw: office clients"
		}, v4(func(o *plan.Observed) {
			o.Family, o.Source, o.Owned, o.Description = plan.IPv6, "2001:db8::/48", true, "office clients"
		})},
		{"bare-mark", vpc, func(p *ecs.Permission) { p.Description = "mailfw" },
			v4(func(o *plan.Observed) { o.Owned = true })},
		{"not-our-mark", vpc, func(p *ecs.Permission) { p.Description = "mailfwd relay" },
			v4(func(o *plan.Observed) { o.Description = "mailfwd relay" })},
		{"group-reference", vpc, func(p *ecs.Permission) { p.SourceCidrIp, p.SourceGroupId = "", "sg-bp1peer" },
			v4(func(o *plan.Observed) { o.Family, o.Source = plan.FamilyAny, "sg-bp1peer" })},
		{"source-port-is-conditional", vpc, func(p *ecs.Permission) { p.SourcePortRange = "1024/65535" },
			v4(func(o *plan.Observed) { o.Conditional = true })},
		{"classic-intranet-is-conditional", classic, func(p *ecs.Permission) {},
			v4(func(o *plan.Observed) { o.Conditional, o.Origin = true, "priority 1, nic intranet" })},
		{"classic-internet", classic, func(p *ecs.Permission) { p.NicType = "internet" },
			v4(func(o *plan.Observed) { o.Origin = "priority 1, nic internet" })},
		{"no-rule-id-is-fixed", vpc, func(p *ecs.Permission) { p.SecurityGroupRuleId = "" },
			v4(func(o *plan.Observed) { o.ID, o.Fixed, o.Origin = "", true, "priority 1, no rule id" })},
		{"icmp-left-out", vpc, func(p *ecs.Permission) { p.IpProtocol, p.PortRange = "ICMP", "-1/-1" }, nil},
		{"egress-left-out", vpc, func(p *ecs.Permission) { p.Direction = "egress" }, nil},
		{"bad-ports-left-out", vpc, func(p *ecs.Permission) { p.PortRange = "25" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.edit(&p)
			got, ok := observe(p, tc.g)
			if tc.want == nil {
				if ok {
					t.Errorf("want the rule left out, got %+v", got)
				}
				return
			}
			if diff := cmp.Diff(*tc.want, got); diff != "" {
				t.Errorf("observe (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRead_scopeOrdersQuotaAndPriorityAsString(t *testing.T) {
	f := newFixture(t)
	f.emu.SetPriorityAsString(true)
	gid := f.group(t, nil)
	f.rule(t, gid, ecsemu.Rule{IpProtocol: "TCP", PortRange: "25/25", SourceCidrIp: "0.0.0.0/0", Priority: 3})
	f.rule(t, gid, ecsemu.Rule{Direction: "egress", IpProtocol: "ALL", PortRange: "-1/-1"})
	tg := f.target(gid)
	tg.Priority, tg.Quota = 2, 150
	st, err := f.open(t, tg, providers.Env{}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sc := st.Scopes[0]
	if sc.ID != gid+" (cn-hangzhou)" || sc.AllowOrder != 5 || sc.DenyOrder != 4 || sc.Quota != 150 ||
		sc.QuotaUsed[plan.IPv4] != 2 || len(sc.Rules) != 1 || sc.Rules[0].Order != 7 {
		t.Errorf("scope %+v", sc)
	}
	if !st.IPv6 || st.Kind != "alibaba ecs" {
		t.Errorf("state %+v", st)
	}
}

func TestDescription(t *testing.T) {
	if got, err := Description("  office clients "); err != nil || got != "office clients" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := Description(strings.Repeat("é", 504)); err != nil {
		t.Errorf("504 characters fit after the prefix: %v", err)
	}
	_, err := Description(strings.Repeat("x", 505))
	if err == nil || !strings.Contains(err.Error(), "512") || !strings.Contains(err.Error(), "504") {
		t.Errorf("505 characters: %v", err)
	}
	if _, err := Description("two\nlines"); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("newline: %v", err)
	}
}

func TestPlan_descriptionTooLongIsAPolicyError(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	tg := f.target(gid)
	p := mustPolicy(t, strings.Replace(mxPolicy, "description: office clients",
		"description: "+strings.Repeat("y", 600), 1))
	_, err := plan.PlanTarget(context.Background(), p, tg, f.open(t, tg, providers.Env{}))
	if err == nil || !strings.Contains(err.Error(), "Alibaba rule description") {
		t.Fatalf("got %v", err)
	}
}
