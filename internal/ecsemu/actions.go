package ecsemu

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ruleFields are the top-level (deprecated) rule parameters of Authorize
// and Revoke, and the fields of each Permissions.N entry.
var ruleFields = []string{"IpProtocol", "PortRange", "SourceCidrIp", "Ipv6SourceCidrIp",
	"SourceGroupId", "SourcePrefixListId", "Policy", "Priority", "Description", "NicType",
	"DestCidrIp", "Ipv6DestCidrIp", "SourcePortRange", "SourceGroupOwnerAccount", "SourceGroupOwnerId"}

var permKey = regexp.MustCompile(`^Permissions\.(\d+)\.(\w+)$`)

func (e *Emulator) lookupGroup(p url.Values) (*group, *apiError) {
	region := p.Get("RegionId")
	if region == "" {
		return nil, errorf(400, "MissingParameter",
			"The input parameter \"RegionId\" that is mandatory for processing this request is not supplied.")
	}
	id := p.Get("SecurityGroupId")
	if id == "" {
		return nil, errorf(400, "MissingParameter",
			"The input parameter \"SecurityGroupId\" that is mandatory for processing this request is not supplied.")
	}
	if !groupIDShape.MatchString(id) {
		return nil, errorf(400, "InvalidSecurityGroupId.Malformed", "The specified parameter SecurityGroupId is not valid.")
	}
	g, ok := e.groups[id]
	if !ok || g.Region != region {
		return nil, errorf(404, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId does not exist.")
	}
	return g, nil
}

// --- DescribeSecurityGroups ---

type tagItem struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

type groupItem struct {
	SecurityGroupID   string `json:"SecurityGroupId"`
	SecurityGroupName string `json:"SecurityGroupName"`
	Description       string `json:"Description"`
	SecurityGroupType string `json:"SecurityGroupType"`
	VpcID             string `json:"VpcId"`
	CreationTime      string `json:"CreationTime"`
	ResourceGroupID   string `json:"ResourceGroupId"`
	ServiceManaged    bool   `json:"ServiceManaged"`
	RuleCount         int    `json:"RuleCount"`
	Tags              struct {
		Tag []tagItem `json:"Tag"`
	} `json:"Tags"`
}

type describeGroupsReply struct {
	RegionID       string `json:"RegionId"`
	TotalCount     int    `json:"TotalCount"`
	PageNumber     int    `json:"PageNumber,omitempty"`
	PageSize       int    `json:"PageSize,omitempty"`
	NextToken      string `json:"NextToken"`
	SecurityGroups struct {
		SecurityGroup []groupItem `json:"SecurityGroup"`
	} `json:"SecurityGroups"`
}

func (e *Emulator) describeSecurityGroups(p url.Values) (any, *apiError) {
	region := p.Get("RegionId")
	if region == "" {
		return nil, errorf(400, "MissingParameter",
			"The input parameter \"RegionId\" that is mandatory for processing this request is not supplied.")
	}
	want, aerr := groupIDFilter(p)
	if aerr != nil {
		return nil, aerr
	}
	tags, aerr := tagFilter(p)
	if aerr != nil {
		return nil, aerr
	}
	var match []*group
	for _, g := range e.groups {
		if g.Region != region || !groupMatches(g, p, want, tags) {
			continue
		}
		match = append(match, g)
	}
	sort.Slice(match, func(a, b int) bool { return match[a].ID > match[b].ID })

	reply := &describeGroupsReply{RegionID: region, TotalCount: len(match)}
	var page []*group
	if p.Has("MaxResults") || p.Has("NextToken") {
		max, aerr := intParam(p, "MaxResults", 10, 1, 100)
		if aerr != nil {
			return nil, aerr
		}
		start, aerr := decodeToken(p.Get("NextToken"))
		if aerr != nil {
			return nil, aerr
		}
		page, reply.NextToken = pageOf(match, start, max)
	} else {
		num, aerr := intParam(p, "PageNumber", 1, 1, 1<<30)
		if aerr != nil {
			return nil, aerr
		}
		size, aerr := intParam(p, "PageSize", 10, 1, 50)
		if aerr != nil {
			return nil, aerr
		}
		reply.PageNumber, reply.PageSize = num, size
		page, _ = pageOf(match, (num-1)*size, size)
	}
	reply.SecurityGroups.SecurityGroup = []groupItem{}
	for _, g := range page {
		reply.SecurityGroups.SecurityGroup = append(reply.SecurityGroups.SecurityGroup, g.item())
	}
	return reply, nil
}

func (g *group) item() groupItem {
	it := groupItem{
		SecurityGroupID: g.ID, SecurityGroupName: g.Name, Description: g.Description,
		SecurityGroupType: g.Type, VpcID: g.VpcID, CreationTime: g.created.Format(time.RFC3339),
		RuleCount: g.count(),
	}
	keys := make([]string, 0, len(g.Tags))
	for k := range g.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	it.Tags.Tag = []tagItem{}
	for _, k := range keys {
		it.Tags.Tag = append(it.Tags.Tag, tagItem{TagKey: k, TagValue: g.Tags[k]})
	}
	return it
}

func groupIDFilter(p url.Values) (map[string]bool, *apiError) {
	want := map[string]bool{}
	if id := p.Get("SecurityGroupId"); id != "" {
		want[id] = true
	}
	if s := p.Get("SecurityGroupIds"); s != "" {
		var ids []string
		if err := json.Unmarshal([]byte(s), &ids); err != nil {
			return nil, errorf(400, "InvalidSecurityGroupIds.Malformed",
				"SecurityGroupIds must be a JSON array of security group ids.")
		}
		if len(ids) > 100 {
			return nil, errorf(400, "InvalidSecurityGroupIds.Malformed",
				"SecurityGroupIds holds %d ids; at most 100 are allowed.", len(ids))
		}
		for _, id := range ids {
			want[id] = true
		}
	}
	return want, nil
}

type tagPair struct{ key, value string }

func tagFilter(p url.Values) ([]tagPair, *apiError) {
	var tags []tagPair
	for n := 1; n <= 21; n++ {
		k := p.Get("Tag." + strconv.Itoa(n) + ".Key")
		if k == "" {
			continue
		}
		if n > 20 {
			return nil, errorf(400, "InvalidParameter", "At most 20 tags may be given.")
		}
		tags = append(tags, tagPair{k, p.Get("Tag." + strconv.Itoa(n) + ".Value")})
	}
	return tags, nil
}

func groupMatches(g *group, p url.Values, ids map[string]bool, tags []tagPair) bool {
	if len(ids) > 0 && !ids[g.ID] {
		return false
	}
	if v := p.Get("VpcId"); v != "" && g.VpcID != v {
		return false
	}
	if v := p.Get("SecurityGroupName"); v != "" && g.Name != v {
		return false
	}
	if v := p.Get("SecurityGroupType"); v != "" && g.Type != v {
		return false
	}
	for _, t := range tags {
		v, ok := g.Tags[t.key]
		if !ok || (t.value != "" && v != t.value) {
			return false
		}
	}
	return true
}

func intParam(p url.Values, name string, def, lo, hi int) (int, *apiError) {
	s := p.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		// NOTE: code chosen by the emulator; the reference does not give it.
		return 0, errorf(400, "InvalidParameter."+name,
			"The specified %s %q is not valid; it must be %d to %d.", name, s, lo, hi)
	}
	return n, nil
}

// Tokens are opaque to clients; inside they carry the next offset.
func encodeToken(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("ecsemu:" + strconv.Itoa(off)))
}

func decodeToken(tok string) (int, *apiError) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	s, ok := strings.CutPrefix(string(b), "ecsemu:")
	n, err2 := strconv.Atoi(s)
	if err != nil || !ok || err2 != nil || n < 0 {
		return 0, errorf(400, "InvalidNextToken.Malformed", "The specified NextToken is not valid.")
	}
	return n, nil
}

func pageOf[T any](all []T, start, size int) ([]T, string) {
	if start >= len(all) {
		return nil, ""
	}
	end := min(start+size, len(all))
	next := ""
	if end < len(all) {
		next = encodeToken(end)
	}
	return all[start:end], next
}

// --- DescribeSecurityGroupAttribute ---

type permissionItem struct {
	SecurityGroupRuleID     string `json:"SecurityGroupRuleId"`
	Direction               string `json:"Direction"`
	IPProtocol              string `json:"IpProtocol"`
	PortRange               string `json:"PortRange"`
	SourcePortRange         string `json:"SourcePortRange"`
	SourceCidrIP            string `json:"SourceCidrIp"`
	Ipv6SourceCidrIP        string `json:"Ipv6SourceCidrIp"`
	SourceGroupID           string `json:"SourceGroupId"`
	SourceGroupName         string `json:"SourceGroupName"`
	SourceGroupOwnerAccount string `json:"SourceGroupOwnerAccount"`
	SourcePrefixListID      string `json:"SourcePrefixListId"`
	SourcePrefixListName    string `json:"SourcePrefixListName"`
	DestCidrIP              string `json:"DestCidrIp"`
	Ipv6DestCidrIP          string `json:"Ipv6DestCidrIp"`
	DestGroupID             string `json:"DestGroupId"`
	DestGroupName           string `json:"DestGroupName"`
	DestGroupOwnerAccount   string `json:"DestGroupOwnerAccount"`
	DestPrefixListID        string `json:"DestPrefixListId"`
	DestPrefixListName      string `json:"DestPrefixListName"`
	Policy                  string `json:"Policy"`
	Priority                any    `json:"Priority"`
	NicType                 string `json:"NicType"`
	Description             string `json:"Description"`
	CreateTime              string `json:"CreateTime"`
}

type describeAttributeReply struct {
	RegionID          string `json:"RegionId"`
	SecurityGroupID   string `json:"SecurityGroupId"`
	SecurityGroupName string `json:"SecurityGroupName"`
	Description       string `json:"Description"`
	VpcID             string `json:"VpcId"`
	InnerAccessPolicy string `json:"InnerAccessPolicy"`
	NextToken         string `json:"NextToken"`
	Permissions       struct {
		Permission []permissionItem `json:"Permission"`
	} `json:"Permissions"`
}

func (e *Emulator) describeSecurityGroupAttribute(p url.Values) (any, *apiError) {
	g, aerr := e.lookupGroup(p)
	if aerr != nil {
		return nil, aerr
	}
	dir := strings.ToLower(p.Get("Direction"))
	switch dir {
	case "", "all", "ingress", "egress":
	default:
		return nil, errorf(400, "InvalidParam.Direction", "The specified Direction %q is not valid.", p.Get("Direction"))
	}
	nic := strings.ToLower(p.Get("NicType"))
	if nic != "" && nic != "internet" && nic != "intranet" {
		return nil, errorf(400, "InvalidNicType.ValueNotSupported", "The specified NicType %q is not supported.", nic)
	}
	max, aerr := intParam(p, "MaxResults", 500, 10, 1000)
	if aerr != nil {
		return nil, aerr
	}
	start, aerr := decodeToken(p.Get("NextToken"))
	if aerr != nil {
		return nil, aerr
	}
	var rules []*Rule
	for _, r := range g.sorted() {
		if (dir == "" || dir == "all" || r.Direction == dir) && (nic == "" || r.NicType == nic) {
			rules = append(rules, r)
		}
	}
	page, next := pageOf(rules, start, max)

	reply := &describeAttributeReply{
		RegionID: g.Region, SecurityGroupID: g.ID, SecurityGroupName: g.Name,
		Description: g.Description, VpcID: g.VpcID, InnerAccessPolicy: "Accept", NextToken: next,
	}
	reply.Permissions.Permission = []permissionItem{}
	for _, r := range page {
		reply.Permissions.Permission = append(reply.Permissions.Permission, e.permission(r))
	}
	return reply, nil
}

func (e *Emulator) permission(r *Rule) permissionItem {
	var prio any = r.Priority
	if e.priorityAsString {
		prio = strconv.Itoa(r.Priority)
	}
	policy := "Accept"
	if r.Policy == "drop" {
		policy = "Drop"
	}
	return permissionItem{
		SecurityGroupRuleID: r.ID, Direction: r.Direction, IPProtocol: r.IpProtocol,
		PortRange: r.PortRange, SourcePortRange: r.SourcePortRange, SourceCidrIP: r.SourceCidrIp,
		Ipv6SourceCidrIP: r.Ipv6SourceCidrIp, SourceGroupID: r.SourceGroupId,
		SourcePrefixListID: r.SourcePrefixListId, DestCidrIP: r.DestCidrIp, Policy: policy,
		Priority: prio, NicType: r.NicType, Description: r.Description,
		CreateTime: r.CreateTime.UTC().Format("2006-01-02T15:04:05Z"),
	}
}

// --- AuthorizeSecurityGroup / RevokeSecurityGroup ---

// permissions returns the rule field sets of a request: Permissions.N when
// given, else the top-level fields as one entry.
func permissions(p url.Values) ([]map[string]string, *apiError) {
	byN := map[int]map[string]string{}
	for _, k := range sortedKeys(p) {
		m := permKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if n < 1 {
			return nil, errorf(400, "InvalidParam.Permissions", "Permissions are numbered from 1.")
		}
		if byN[n] == nil {
			byN[n] = map[string]string{}
		}
		byN[n][m[2]] = p.Get(k)
	}
	top := map[string]string{}
	for _, f := range ruleFields {
		if v := p.Get(f); v != "" {
			top[f] = v
		}
	}
	if len(byN) == 0 {
		if len(top) == 0 {
			return nil, nil
		}
		return []map[string]string{top}, nil
	}
	if len(top) > 0 {
		return nil, errorf(400, "InvalidParam.Permissions",
			"Permissions cannot be specified together with the top-level rule parameters.")
	}
	if len(byN) > 100 {
		return nil, errorf(400, "InvalidParam.Permissions", "At most 100 Permissions may be given; got %d.", len(byN))
	}
	ns := make([]int, 0, len(byN))
	for n := range byN {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	out := make([]map[string]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, byN[n])
	}
	return out, nil
}

func (e *Emulator) authorizeSecurityGroup(p url.Values) (any, *apiError) {
	g, aerr := e.lookupGroup(p)
	if aerr != nil {
		return nil, aerr
	}
	perms, aerr := permissions(p)
	if aerr != nil {
		return nil, aerr
	}
	if len(perms) == 0 {
		return nil, errorf(400, "MissingParameter.Source",
			"One of SourceCidrIp, Ipv6SourceCidrIp, SourceGroupId or SourcePrefixListId must be set.")
	}
	existing := map[string]*Rule{}
	for _, r := range g.rules {
		existing[r.identity()] = r
	}
	seen := map[string]bool{}
	var fresh, dups []*Rule
	for _, f := range perms {
		r, aerr := validateRule(g, "ingress", f)
		if aerr != nil {
			return nil, aerr
		}
		id := r.identity()
		if seen[id] {
			return nil, errorf(400, "InvalidParam.DuplicatePermissions", "The Permissions contain duplicate entries.")
		}
		seen[id] = true
		if old, ok := existing[id]; ok {
			dups = append(dups, old, r)
			continue
		}
		fresh = append(fresh, r)
	}
	refs := 0
	for _, r := range fresh {
		if r.SourceGroupId != "" {
			refs++
		}
	}
	if refs > 0 && g.groupRefs()+refs > 20 {
		return nil, errorf(400, "AuthorizedGroupRule.LimitExceed",
			"A security group can reference at most 20 security groups.")
	}
	if g.count()+len(fresh) > e.quota {
		return nil, errorf(403, "AuthorizationLimitExceed",
			"The limit of authorization records in the security group reaches.")
	}
	now := e.now().UTC()
	for _, r := range fresh {
		r.ID = e.newID("sgr-")
		r.CreateTime = now
		g.rules = append(g.rules, r)
	}
	if e.duplicateUpdates {
		for i := 0; i < len(dups); i += 2 {
			dups[i].Priority, dups[i].Description = dups[i+1].Priority, dups[i+1].Description
		}
	}
	return struct{}{}, nil
}

func (e *Emulator) revokeSecurityGroup(p url.Values) (any, *apiError) {
	g, aerr := e.lookupGroup(p)
	if aerr != nil {
		return nil, aerr
	}
	var ids []string
	for n := 1; ; n++ {
		v := p.Get("SecurityGroupRuleId." + strconv.Itoa(n))
		if v == "" {
			break
		}
		ids = append(ids, v)
	}
	perms, aerr := permissions(p)
	if aerr != nil {
		return nil, aerr
	}
	switch {
	case len(ids) > 0 && len(perms) > 0:
		// NOTE: code chosen by the emulator; the reference only says "not both".
		return nil, errorf(400, "InvalidParameter.Conflict",
			"SecurityGroupRuleId cannot be specified together with Permissions.")
	case len(ids) > 0:
		return e.revokeByID(g, ids)
	case len(perms) > 0:
		return e.revokeByFields(g, perms)
	}
	return nil, errorf(400, "MissingParameter",
		"Either SecurityGroupRuleId.N or Permissions.N must be specified.")
}

func (e *Emulator) revokeByID(g *group, ids []string) (any, *apiError) {
	if len(ids) > 100 {
		return nil, errorf(400, "InvalidParam.SecurityGroupRuleId", "At most 100 rule ids may be given.")
	}
	drop := map[string]bool{}
	for _, id := range ids {
		if drop[id] {
			return nil, errorf(400, "InvalidParam.SecurityGroupRuleIdRepeated",
				"The rule id %s is given more than once.", id)
		}
		drop[id] = true
	}
	found := 0
	for _, r := range g.rules {
		if drop[r.ID] && r.Direction == "ingress" {
			found++
		}
	}
	if found != len(drop) {
		// NOTE: the reference lists this code and a 404
		// InvalidSecurityGroupRuleId.NotFound; the emulator sends this one.
		return nil, errorf(400, "InvalidParam.SecurityGroupRuleId",
			"The specified SecurityGroupRuleId does not exist in the security group.")
	}
	g.remove(func(r *Rule) bool { return drop[r.ID] })
	return struct{}{}, nil
}

func (e *Emulator) revokeByFields(g *group, perms []map[string]string) (any, *apiError) {
	drop := map[string]bool{}
	for _, f := range perms {
		r, aerr := validateRule(g, "ingress", f)
		if aerr != nil {
			return nil, aerr
		}
		drop[r.identity()] = true
	}
	g.remove(func(r *Rule) bool { return drop[r.identity()] })
	return struct{}{}, nil
}

func (g *group) remove(match func(*Rule) bool) {
	kept := g.rules[:0]
	for _, r := range g.rules {
		if !match(r) {
			kept = append(kept, r)
		}
	}
	g.rules = kept
}

// --- ModifySecurityGroupRule ---

func (e *Emulator) modifySecurityGroupRule(p url.Values) (any, *apiError) {
	g, aerr := e.lookupGroup(p)
	if aerr != nil {
		return nil, aerr
	}
	id := p.Get("SecurityGroupRuleId")
	if id == "" {
		// NOTE: the old matching by fields is not modelled.
		return nil, errorf(400, "MissingParameter",
			"The input parameter \"SecurityGroupRuleId\" that is mandatory for processing this request is not supplied.")
	}
	var old *Rule
	for _, r := range g.rules {
		if r.ID == id && r.Direction == "ingress" {
			old = r
		}
	}
	if old == nil {
		return nil, errorf(404, "InvalidSecurityGroupRuleId.NotFound", "The specified SecurityGroupRuleId does not exist.")
	}
	f := old.fields()
	sourceSet := false
	for _, k := range ruleFields {
		if v := p.Get(k); v != "" {
			switch k {
			case "SourceCidrIp", "Ipv6SourceCidrIp", "SourceGroupId", "SourcePrefixListId":
				if !sourceSet {
					delete(f, "SourceCidrIp")
					delete(f, "Ipv6SourceCidrIp")
					delete(f, "SourceGroupId")
					delete(f, "SourcePrefixListId")
					sourceSet = true
				}
			}
			f[k] = v
		}
	}
	if v := p.Get("NicType"); v != "" && g.VpcID == "" && !strings.EqualFold(v, old.NicType) {
		return nil, errorf(400, "InvalidOperation.ModifyNicType", "The NicType of a rule cannot be changed.")
	}
	nr, aerr := validateRule(g, "ingress", f)
	if aerr != nil {
		return nil, aerr
	}
	if nr.sourceKind() != old.sourceKind() {
		return nil, errorf(400, "InvalidOperation.ModifySgRuleEntityType",
			"The source type or address family of a rule cannot be changed.")
	}
	for _, r := range g.rules {
		if r != old && r.identity() == nr.identity() {
			return nil, errorf(400, "InvalidOperation.RuleDuplicate",
				"The modified rule would duplicate rule %s.", r.ID)
		}
	}
	nr.ID, nr.CreateTime = old.ID, old.CreateTime
	*old = *nr
	return struct{}{}, nil
}

func (r *Rule) fields() map[string]string {
	f := map[string]string{
		"IpProtocol": r.IpProtocol, "PortRange": r.PortRange, "Policy": r.Policy,
		"Priority": strconv.Itoa(r.Priority), "NicType": r.NicType, "Description": r.Description,
		"SourceCidrIp": r.SourceCidrIp, "Ipv6SourceCidrIp": r.Ipv6SourceCidrIp,
		"SourceGroupId": r.SourceGroupId, "SourcePrefixListId": r.SourcePrefixListId,
		"DestCidrIp": r.DestCidrIp, "SourcePortRange": r.SourcePortRange,
	}
	for k, v := range f {
		if v == "" {
			delete(f, k)
		}
	}
	return f
}
