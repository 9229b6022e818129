package alibaba

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/mailfw/mailfw/plan"
)

// FindingOutbound25 is the id of the finding that ECS blocks outbound TCP 25.
const FindingOutbound25 = "alibaba-outbound-25"

// groupInfo is what DescribeSecurityGroups says about a group.
type groupInfo struct {
	ID        string
	VpcID     string // "" for a classic-network group
	Type      string // "normal" or "enterprise"
	RuleCount int    // ingress and egress
}

func (g groupInfo) scope(region string) string { return g.ID + " (" + region + ")" }

// Read implements plan.Backend: one scope per security group, read
// concurrently.
func (b *Backend) Read(ctx context.Context) (*plan.State, error) {
	groups, err := b.resolveGroups(ctx)
	if err != nil {
		return nil, err
	}
	b.logger.Info("security groups selected", "count", len(groups))
	scopes := make([]plan.Scope, len(groups))
	var done atomic.Int64
	err = b.forEach(ctx, len(groups), func(ctx context.Context, i int) error {
		perms, err := b.readRules(ctx, groups[i].ID)
		if err != nil {
			return fmt.Errorf("reading rules of %s: %w", groups[i].scope(b.region), err)
		}
		scopes[i] = b.toScope(groups[i], perms)
		b.progressStep("read", int(done.Add(1)), len(groups))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &plan.State{
		Kind: "alibaba ecs", Scopes: scopes, IPv6: true,
		Findings: []plan.Finding{{ID: FindingOutbound25, Severity: plan.Info,
			Message: "Alibaba Cloud blocks outbound TCP 25 from ECS instances by default: a mail server " +
				"here receives on 25 but cannot deliver to other MX hosts until Alibaba lifts the block " +
				"for the account, or it relays through a smarthost on 465 or 587"}},
	}, nil
}

// resolveGroups lists the target's groups: the named ones (which must all
// exist) and those the selector matches, sorted by id.
func (b *Backend) resolveGroups(ctx context.Context) ([]groupInfo, error) {
	found := map[string]groupInfo{}
	if ids := dedupe(b.target.SecurityGroups); len(ids) > 0 {
		got, err := b.describeByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		maps.Copy(found, got)
	}
	if sel := b.target.Select; sel != nil {
		got, err := b.describeSelected(ctx, sel)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("no security group in %s matches %s", b.region, describeSelect(sel))
		}
		maps.Copy(found, got)
	}
	out := slices.Collect(maps.Values(found))
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func describeSelect(s *plan.Select) string {
	keys := slices.Sorted(maps.Keys(s.Tags))
	parts := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		parts = append(parts, k+"="+s.Tags[k])
	}
	if s.VPCID != "" {
		parts = append(parts, "vpc "+s.VPCID)
	}
	return "tags " + strings.Join(parts, ", ")
}

// describeByID asks for up to 100 ids a call (the API's limit for
// SecurityGroupIds) and fails naming every id that does not exist.
func (b *Backend) describeByID(ctx context.Context, ids []string) (map[string]groupInfo, error) {
	found := map[string]groupInfo{}
	for batch := range slices.Chunk(ids, 100) {
		list, _ := json.Marshal(batch)
		err := b.describeGroups(ctx, func(r *ecs.DescribeSecurityGroupsRequest) {
			r.SecurityGroupIds = string(list)
		}, found)
		if err != nil {
			return nil, err
		}
	}
	var missing []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, &GroupNotFoundError{Region: b.region, IDs: missing}
	}
	return found, nil
}

func (b *Backend) describeSelected(ctx context.Context, sel *plan.Select) (map[string]groupInfo, error) {
	found := map[string]groupInfo{}
	tags := []ecs.DescribeSecurityGroupsTag{}
	for _, k := range slices.Sorted(maps.Keys(sel.Tags)) {
		tags = append(tags, ecs.DescribeSecurityGroupsTag{Key: k, Value: sel.Tags[k]})
	}
	err := b.describeGroups(ctx, func(r *ecs.DescribeSecurityGroupsRequest) {
		if len(tags) > 0 {
			r.Tag = &tags
		}
		r.VpcId = sel.VPCID
	}, found)
	return found, err
}

// describeGroups pages through DescribeSecurityGroups with NextToken.
func (b *Backend) describeGroups(ctx context.Context, set func(*ecs.DescribeSecurityGroupsRequest),
	into map[string]groupInfo) error {
	token := ""
	for {
		r := ecs.CreateDescribeSecurityGroupsRequest()
		r.RegionId = b.region
		r.MaxResults = requests.NewInteger(100)
		r.NextToken = token
		set(r)
		var resp *ecs.DescribeSecurityGroupsResponse
		err := b.call(ctx, "DescribeSecurityGroups", func(c *ecs.Client) (err error) {
			resp, err = c.DescribeSecurityGroups(r)
			return err
		})
		if err != nil {
			return fmt.Errorf("listing security groups in %s: %w", b.region, err)
		}
		for _, g := range resp.SecurityGroups.SecurityGroup {
			into[g.SecurityGroupId] = groupInfo{ID: g.SecurityGroupId, VpcID: g.VpcId,
				Type: g.SecurityGroupType, RuleCount: g.RuleCount}
		}
		if resp.NextToken == "" || resp.NextToken == token {
			return nil
		}
		token = resp.NextToken
	}
}

// readRules pages through the ingress rules of one group.
func (b *Backend) readRules(ctx context.Context, id string) ([]ecs.Permission, error) {
	var out []ecs.Permission
	token := ""
	for {
		r := ecs.CreateDescribeSecurityGroupAttributeRequest()
		r.RegionId = b.region
		r.SecurityGroupId = id
		r.Direction = "ingress"
		r.MaxResults = requests.NewInteger(1000)
		r.NextToken = token
		var resp *ecs.DescribeSecurityGroupAttributeResponse
		err := b.call(ctx, "DescribeSecurityGroupAttribute", func(c *ecs.Client) (err error) {
			resp, err = c.DescribeSecurityGroupAttribute(r)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Permissions.Permission...)
		if resp.NextToken == "" || resp.NextToken == token {
			return out, nil
		}
		token = resp.NextToken
	}
}

func (b *Backend) toScope(g groupInfo, perms []ecs.Permission) plan.Scope {
	sc := plan.Scope{
		ID: g.scope(b.region), Rules: []plan.Observed{},
		AllowOrder: b.priority*2 + 1, DenyOrder: b.priority * 2,
		Quota: b.quota,
		// NOTE: ECS counts ingress and egress rules of both families against
		// one quota: the whole count goes under IPv4 and the planner adds
		// the families together.
		QuotaUsed:   map[plan.Family]int{plan.IPv4: g.RuleCount},
		QuotaShared: true,
	}
	for _, p := range perms {
		o, ok := observe(p, g)
		if !ok {
			b.logger.Debug("rule left out", "sg_id", g.ID, "rule_id", p.SecurityGroupRuleId,
				"protocol", p.IpProtocol, "port_range", p.PortRange)
			continue
		}
		sc.Rules = append(sc.Rules, o)
	}
	return sc
}

// observe translates one ECS permission. It leaves out what cannot carry
// TCP or UDP to a port (ICMP, GRE), egress rules and rules it cannot parse.
func observe(p ecs.Permission, g groupInfo) (plan.Observed, bool) {
	if p.Direction != "" && !strings.EqualFold(p.Direction, "ingress") {
		return plan.Observed{}, false
	}
	o := plan.Observed{ID: p.SecurityGroupRuleId}
	switch proto := strings.ToLower(p.IpProtocol); proto {
	case "tcp", "udp":
		o.Protocol = proto
		from, to, ok := parsePorts(p.PortRange)
		if !ok {
			return plan.Observed{}, false
		}
		o.PortFrom, o.PortTo = from, to
	case "all":
		o.Protocol, o.PortFrom, o.PortTo = "all", 1, 65535
	default:
		return plan.Observed{}, false
	}

	var err error
	switch {
	case p.SourceCidrIp != "":
		o.Source, o.Family, err = plan.CanonicalSource(p.SourceCidrIp)
	case p.Ipv6SourceCidrIp != "":
		o.Source, o.Family, err = plan.CanonicalSource(p.Ipv6SourceCidrIp)
	case p.SourceGroupId != "":
		o.Source, o.Family = p.SourceGroupId, plan.FamilyAny
	case p.SourcePrefixListId != "":
		o.Source, o.Family = p.SourcePrefixListId, plan.FamilyAny
	default:
		return plan.Observed{}, false
	}
	if err != nil {
		return plan.Observed{}, false
	}

	switch strings.ToLower(p.Policy) {
	case "", "accept":
		o.Verdict = plan.Allow
	case "drop":
		o.Verdict = plan.Deny
	default:
		return plan.Observed{}, false
	}
	prio, err := strconv.Atoi(p.Priority)
	if err != nil || prio < 1 {
		prio = DefaultPriority
	}
	// Lower priority numbers are evaluated first and, at one priority, drop
	// beats accept: drop gets the even order below its accept.
	o.Order = prio * 2
	if o.Verdict == plan.Allow {
		o.Order++
	}
	o.Owned, o.Description = unmark(p.Description)
	o.Origin = "priority " + strconv.Itoa(prio)

	o.Conditional = conditional(p, g)
	if g.VpcID == "" {
		o.Origin += ", nic " + strings.ToLower(p.NicType)
	}
	if o.ID == "" {
		// TODO: rules listed without a SecurityGroupRuleId could be removed
		// by their fields (RevokeSecurityGroup with Permissions.N); until
		// then mailfw leaves them alone.
		o.Fixed = true
		o.Origin += ", no rule id"
	}
	return o, true
}

// conditional reports matches mailfw does not model: a source port range,
// a destination, or, in a classic-network group, an intranet-only rule
// whose source is an address (it does not see traffic from the internet).
func conditional(p ecs.Permission, g groupInfo) bool {
	switch p.SourcePortRange {
	case "", "-1/-1", "1/65535":
	default:
		return true
	}
	if p.DestCidrIp != "" || p.Ipv6DestCidrIp != "" || p.DestGroupId != "" || p.DestPrefixListId != "" {
		return true
	}
	if g.VpcID == "" && strings.EqualFold(p.NicType, "intranet") && p.SourceGroupId == "" {
		return true
	}
	return false
}

// parsePorts reads "25/25", "1/65535" or "-1/-1" (all ports).
func parsePorts(s string) (int, int, bool) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, false
	}
	from, err1 := strconv.Atoi(a)
	to, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	if from == -1 && to == -1 {
		return 1, 65535, true
	}
	if from < 1 || to > 65535 || from > to {
		return 0, 0, false
	}
	return from, to, true
}
