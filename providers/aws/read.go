package aws

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mailfw/mailfw/plan"
)

// filterChunk is how many group ids one filter carries. EC2 documents no
// limit on filter values; 200 keeps request bodies small.
const filterChunk = 200

// pageSize is the MaxResults of every listing (the most EC2 allows).
const pageSize = 1000

// Finding ids this backend adds.
const (
	FindingOutbound25 = "aws-outbound-25"
	FindingNoGroups   = "aws-no-groups"
)

// group is one security group as read.
type group struct {
	region, id, owner string
	rules             []types.SecurityGroupRule // ingress only
}

func (g *group) scope() string { return scopeID(g.region, g.id) }

// prefixInfo is what the quota needs to know about a prefix list.
type prefixInfo struct {
	family     plan.Family
	maxEntries int
}

// Read lists the target's groups and their inbound rules, with as few calls
// as the API allows: one DescribeSecurityGroups per region (per 200 ids),
// one DescribeSecurityGroupRules page per 1000 rules of up to 200 groups,
// and one DescribeManagedPrefixLists per region whose rules name a prefix
// list.
func (b *Backend) Read(ctx context.Context) (*plan.State, error) {
	groups, err := b.resolveGroups(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.readRules(ctx, groups); err != nil {
		return nil, err
	}
	pls, err := b.prefixLists(ctx, groups, nil)
	if err != nil {
		return nil, err
	}
	st := &plan.State{Kind: "aws", IPv6: true, Findings: []plan.Finding{{
		ID: FindingOutbound25, Severity: plan.Info,
		Message: "EC2 throttles outbound TCP 25 by default: an MX that also delivers mail needs " +
			"AWS to lift the limit (the \"Request to remove email sending limitations\" form)",
	}}}
	if len(groups) == 0 {
		st.Findings = append(st.Findings, plan.Finding{ID: FindingNoGroups, Severity: plan.Medium,
			Message: fmt.Sprintf("no security group matches the target's selection in %s",
				strings.Join(b.regions, ", "))})
		b.log.Warn("no security group matched", "regions", b.regions)
	}
	st.Extra = prefixExtra(pls)
	last := map[string]*group{}
	for _, g := range groups {
		st.Scopes = append(st.Scopes, b.scopeOf(g, pls[g.region]))
		last[g.scope()] = g
	}
	sort.Slice(st.Scopes, func(i, j int) bool { return st.Scopes[i].ID < st.Scopes[j].ID })
	b.mu.Lock()
	b.last = last
	b.mu.Unlock()
	return st, nil
}

func (b *Backend) scopeOf(g *group, pls map[string]prefixInfo) plan.Scope {
	sc := plan.Scope{ID: g.scope(), Quota: b.quota, Rules: []plan.Observed{}}
	for _, r := range g.rules {
		if o, ok := observe(r); ok {
			sc.Rules = append(sc.Rules, o)
		}
	}
	sc.QuotaUsed = usage(g.rules, pls)
	return sc
}

// usage counts what rules use of the per-family quota: a CIDR counts
// against its family, a referenced group against both, and a prefix list
// its max entries against its own family.
func usage(rules []types.SecurityGroupRule, pls map[string]prefixInfo) map[plan.Family]int {
	used := map[plan.Family]int{plan.IPv4: 0, plan.IPv6: 0}
	for _, r := range rules {
		v4, v6 := weight(ruleSource(r), pls)
		used[plan.IPv4] += v4
		used[plan.IPv6] += v6
	}
	return used
}

func ruleSource(r types.SecurityGroupRule) source {
	switch {
	case r.CidrIpv4 != nil:
		return source{cidrV4: *r.CidrIpv4}
	case r.CidrIpv6 != nil:
		return source{cidrV6: *r.CidrIpv6}
	case r.PrefixListId != nil:
		return source{prefixList: *r.PrefixListId}
	case r.ReferencedGroupInfo != nil:
		return source{groupID: aws.ToString(r.ReferencedGroupInfo.GroupId)}
	}
	return source{}
}

// weight is what one rule with this source counts against each family.
// A prefix list whose size is unknown counts as one rule in both.
func weight(s source, pls map[string]prefixInfo) (v4, v6 int) {
	switch {
	case s.cidrV4 != "":
		return 1, 0
	case s.cidrV6 != "":
		return 0, 1
	case s.prefixList != "":
		pl, ok := pls[s.prefixList]
		if !ok {
			return 1, 1
		}
		if pl.family == plan.IPv6 {
			return 0, pl.maxEntries
		}
		return pl.maxEntries, 0
	}
	return 1, 1
}

// resolveGroups finds the target's groups in every region: those named by
// id (each must exist in one of the regions) and those whose tags match.
func (b *Backend) resolveGroups(ctx context.Context) ([]*group, error) {
	type query struct {
		region  string
		filters []types.Filter
	}
	var queries []query
	for _, r := range b.regions {
		for ids := range slices.Chunk(b.target.SecurityGroups, filterChunk) {
			queries = append(queries, query{r, []types.Filter{{Name: aws.String("group-id"), Values: ids}}})
		}
		if b.target.Select != nil && len(b.target.Select.Tags) > 0 {
			var fs []types.Filter
			for _, k := range slices.Sorted(maps.Keys(b.target.Select.Tags)) {
				fs = append(fs, types.Filter{Name: aws.String("tag:" + k),
					Values: []string{b.target.Select.Tags[k]}})
			}
			queries = append(queries, query{r, fs})
		}
	}
	var mu sync.Mutex
	found := map[string]*group{}
	errs := each(ctx, b.parallel, len(queries), always, func(ctx context.Context, i int) error {
		q := queries[i]
		gs, err := b.describeGroups(ctx, q.region, q.filters)
		mu.Lock()
		defer mu.Unlock()
		for _, g := range gs {
			found[g.scope()] = g
		}
		return err
	})
	if err := firstError(errs); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, g := range found {
		seen[g.id] = true
	}
	var missing []string
	for _, id := range b.target.SecurityGroups {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("target %q: security group %s not found in %s",
			b.target.Name, strings.Join(missing, ", "), strings.Join(b.regions, ", "))
	}
	out := slices.Collect(maps.Values(found))
	sort.Slice(out, func(i, j int) bool { return out[i].scope() < out[j].scope() })
	return out, nil
}

func (b *Backend) describeGroups(ctx context.Context, region string, filters []types.Filter) ([]*group, error) {
	pg := ec2.NewDescribeSecurityGroupsPaginator(b.clients[region], &ec2.DescribeSecurityGroupsInput{
		Filters: filters, MaxResults: aws.Int32(pageSize)})
	var out []*group
	for pg.HasMorePages() {
		var page *ec2.DescribeSecurityGroupsOutput
		err := b.call(ctx, region, "DescribeSecurityGroups", func(ctx context.Context) error {
			var err error
			page, err = pg.NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, sg := range page.SecurityGroups {
			out = append(out, &group{region: region, id: aws.ToString(sg.GroupId),
				owner: aws.ToString(sg.OwnerId)})
		}
	}
	return out, nil
}

// readRules fills in the inbound rules of groups, many groups per call.
func (b *Backend) readRules(ctx context.Context, groups []*group) error {
	type chunk struct {
		region string
		groups []*group
	}
	byRegion := map[string][]*group{}
	for _, g := range groups {
		g.rules = nil
		byRegion[g.region] = append(byRegion[g.region], g)
	}
	var chunks []chunk
	for _, r := range slices.Sorted(maps.Keys(byRegion)) {
		for gs := range slices.Chunk(byRegion[r], filterChunk) {
			chunks = append(chunks, chunk{r, gs})
		}
	}
	var mu sync.Mutex
	done := 0
	errs := each(ctx, b.parallel, len(chunks), always, func(ctx context.Context, i int) error {
		c := chunks[i]
		byID := map[string]*group{}
		for _, g := range c.groups {
			byID[g.id] = g
		}
		rules, err := b.describeRules(ctx, c.region, slices.Collect(maps.Keys(byID)))
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rules {
			if g := byID[aws.ToString(r.GroupId)]; g != nil && !aws.ToBool(r.IsEgress) {
				g.rules = append(g.rules, r)
			}
		}
		done += len(c.groups)
		if b.progress != nil && len(groups) > filterChunk {
			fmt.Fprintf(b.progress, "aws: read the rules of %d of %d security groups\n", done, len(groups))
		}
		return nil
	})
	return firstError(errs)
}

func (b *Backend) describeRules(ctx context.Context, region string, ids []string) ([]types.SecurityGroupRule, error) {
	sort.Strings(ids)
	pg := ec2.NewDescribeSecurityGroupRulesPaginator(b.clients[region], &ec2.DescribeSecurityGroupRulesInput{
		Filters:    []types.Filter{{Name: aws.String("group-id"), Values: ids}},
		MaxResults: aws.Int32(pageSize),
	})
	var out []types.SecurityGroupRule
	for pg.HasMorePages() {
		var page *ec2.DescribeSecurityGroupRulesOutput
		err := b.call(ctx, region, "DescribeSecurityGroupRules", func(ctx context.Context) error {
			var err error
			page, err = pg.NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page.SecurityGroupRules...)
	}
	return out, nil
}

// prefixLists looks up the family and max entries of every prefix list the
// groups' rules name, plus extra (region -> ids), one call per region.
func (b *Backend) prefixLists(ctx context.Context, groups []*group, extra map[string][]string) (
	map[string]map[string]prefixInfo, error) {
	want := map[string]map[string]bool{}
	add := func(region, id string) {
		if want[region] == nil {
			want[region] = map[string]bool{}
		}
		want[region][id] = true
	}
	for _, g := range groups {
		for _, r := range g.rules {
			if r.PrefixListId != nil {
				add(g.region, *r.PrefixListId)
			}
		}
	}
	for region, ids := range extra {
		for _, id := range ids {
			add(region, id)
		}
	}
	regions := slices.Sorted(maps.Keys(want))
	out := map[string]map[string]prefixInfo{}
	var mu sync.Mutex
	errs := each(ctx, b.parallel, len(regions), always, func(ctx context.Context, i int) error {
		region := regions[i]
		got, err := b.describePrefixLists(ctx, region, slices.Sorted(maps.Keys(want[region])))
		mu.Lock()
		out[region] = got
		mu.Unlock()
		return err
	})
	if err := firstError(errs); err != nil {
		return nil, err
	}
	for region, ids := range want {
		for id := range ids {
			if _, ok := out[region][id]; !ok {
				b.log.Warn("prefix list not visible; counting it as one rule per family",
					"region", region, "prefix_list", id)
			}
		}
	}
	return out, nil
}

func (b *Backend) describePrefixLists(ctx context.Context, region string, ids []string) (map[string]prefixInfo, error) {
	out := map[string]prefixInfo{}
	pg := ec2.NewDescribeManagedPrefixListsPaginator(b.clients[region], &ec2.DescribeManagedPrefixListsInput{
		Filters:    []types.Filter{{Name: aws.String("prefix-list-id"), Values: ids}},
		MaxResults: aws.Int32(100),
	})
	for pg.HasMorePages() {
		var page *ec2.DescribeManagedPrefixListsOutput
		err := b.call(ctx, region, "DescribeManagedPrefixLists", func(ctx context.Context) error {
			var err error
			page, err = pg.NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, pl := range page.PrefixLists {
			fam := plan.IPv4
			if aws.ToString(pl.AddressFamily) == "IPv6" {
				fam = plan.IPv6
			}
			out[aws.ToString(pl.PrefixListId)] = prefixInfo{family: fam, maxEntries: int(aws.ToInt32(pl.MaxEntries))}
		}
	}
	return out, nil
}

// prefixExtra records the prefix lists' sizes in State.Extra, so that a
// resized list makes a saved plan stale: its size is part of the quota.
func prefixExtra(pls map[string]map[string]prefixInfo) string {
	var parts []string
	for region, m := range pls {
		for id, pl := range m {
			parts = append(parts, fmt.Sprintf("%s/%s=%s:%d", region, id, pl.family, pl.maxEntries))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
