package ec2emu

import (
	"fmt"
	"slices"
	"strings"
)

// pageToken remembers where a paginated listing stopped.
type pageToken struct {
	action string
	offset int
}

// page cuts items [offset, offset+max) out of n, per MaxResults and
// NextToken, and returns the token for the rest ("" at the end).
func (s *Server) page(action string, p params, n, lo, hi int) (start, end int, next string, e *apiError) {
	max, set, err := p.intParam("MaxResults")
	if err != nil || (set && (max < lo || max > hi)) {
		return 0, 0, "", errorf("InvalidParameterValue",
			"Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.",
			p["MaxResults"], lo, hi)
	}
	if tok, ok := p["NextToken"]; ok && tok != "" {
		pt, found := s.tokens[tok]
		if !found || pt.action != action {
			return 0, 0, "", errorf("InvalidPaginationToken", "The pagination token %q is invalid.", tok)
		}
		start = pt.offset
	}
	if !set {
		return min(start, n), n, "", nil
	}
	start = min(start, n)
	end = min(start+max, n)
	if end < n {
		next = s.newID("token")
		s.tokens[next] = pageToken{action: action, offset: end}
	}
	return start, end, next, nil
}

func checkGroupID(id string) *apiError {
	if !groupIDPattern.MatchString(id) {
		return errorf("InvalidGroupId.Malformed", "Invalid id: %q (expecting \"sg-...\")", id)
	}
	return nil
}

func (s *Server) describeGroups(rg *region, p params) (payload, *apiError) {
	ids := p.strings("GroupId")
	names := p.strings("GroupName")
	for _, id := range ids {
		if e := checkGroupID(id); e != nil {
			return nil, e
		}
		if rg.groupByID[id] == nil {
			return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(rg.groups, func(g *Group) bool { return g.Name == n }) {
			return nil, errorf("InvalidGroup.NotFound",
				"The security group '%s' does not exist in default VPC '%s'", n, rg.vpcID)
		}
	}
	filters := p.filters()
	for _, f := range filters {
		if e := checkGroupFilter(f); e != nil {
			return nil, e
		}
	}
	var match []*Group
	for _, g := range rg.groups {
		if (ids == nil || slices.Contains(ids, g.ID)) &&
			(names == nil || slices.Contains(names, g.Name)) && groupMatches(g, filters) {
			match = append(match, g)
		}
	}
	start, end, next, e := s.page("DescribeSecurityGroups", p, len(match), 5, 1000)
	if e != nil {
		return nil, e
	}
	out := &describeGroupsResult{NextToken: next}
	for _, g := range match[start:end] {
		out.Groups = append(out.Groups, rg.groupXML(g))
	}
	return out, nil
}

func checkGroupFilter(f filter) *apiError {
	switch {
	case f.Name == "group-id":
		for _, v := range f.Values {
			if e := checkGroupID(v); e != nil {
				return e
			}
		}
	case f.Name == "group-name", f.Name == "vpc-id", f.Name == "owner-id",
		f.Name == "description", f.Name == "tag-key", strings.HasPrefix(f.Name, "tag:"):
	default:
		return errorf("InvalidParameterValue", "The filter '%s' is invalid", f.Name)
	}
	return nil
}

// groupMatches ANDs the filters and ORs the values within each.
func groupMatches(g *Group, filters []filter) bool {
	for _, f := range filters {
		var ok bool
		switch {
		case f.Name == "group-id":
			ok = slices.Contains(f.Values, g.ID)
		case f.Name == "group-name":
			ok = slices.Contains(f.Values, g.Name)
		case f.Name == "vpc-id":
			ok = slices.Contains(f.Values, g.VPCID)
		case f.Name == "owner-id":
			ok = slices.Contains(f.Values, g.OwnerID)
		case f.Name == "description":
			ok = slices.Contains(f.Values, g.Description)
		case f.Name == "tag-key":
			ok = slices.ContainsFunc(f.Values, func(k string) bool { return hasTag(g.Tags, k, nil) })
		case strings.HasPrefix(f.Name, "tag:"):
			ok = hasTag(g.Tags, strings.TrimPrefix(f.Name, "tag:"), f.Values)
		}
		if !ok {
			return false
		}
	}
	return true
}

// groupXML renders a group, merging rules that share protocol and ports
// into one IpPermission as DescribeSecurityGroups does.
func (rg *region) groupXML(g *Group) xmlGroup {
	x := xmlGroup{
		OwnerID: g.OwnerID, GroupID: g.ID, GroupName: g.Name, Description: g.Description,
		VPCID: g.VPCID, Tags: toXMLTags(g.Tags),
		ARN: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", rg.name, g.OwnerID, g.ID),
	}
	for _, egress := range []bool{false, true} {
		var perms []xmlPermission
		index := map[string]int{}
		for _, r := range rg.rules {
			if r.GroupID != g.ID || r.Egress != egress {
				continue
			}
			k := fmt.Sprintf("%s|%d|%d", r.Protocol, r.FromPort, r.ToPort)
			i, ok := index[k]
			if !ok {
				i = len(perms)
				index[k] = i
				perm := xmlPermission{IPProtocol: r.Protocol}
				if r.Protocol != "-1" {
					from, to := r.FromPort, r.ToPort
					perm.FromPort, perm.ToPort = &from, &to
				}
				perms = append(perms, perm)
			}
			addSource(&perms[i], r)
		}
		if egress {
			x.Egress = perms
		} else {
			x.Ingress = perms
		}
	}
	return x
}

func addSource(perm *xmlPermission, r *Rule) {
	switch {
	case r.CIDRv4 != "":
		perm.IPRanges = append(perm.IPRanges, xmlRange{r.CIDRv4, r.Description})
	case r.CIDRv6 != "":
		perm.IPv6Ranges = append(perm.IPv6Ranges, xmlRange6{r.CIDRv6, r.Description})
	case r.PrefixListID != "":
		perm.PrefixList = append(perm.PrefixList, xmlPrefixListID{r.PrefixListID, r.Description})
	default:
		perm.Groups = append(perm.Groups, xmlPair{r.RefUserID, r.RefGroupID, r.Description})
	}
}

func (s *Server) createGroup(rg *region, p params) (payload, *apiError) {
	name, desc := p["GroupName"], p["GroupDescription"]
	if name == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter groupName")
	}
	if desc == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter groupDescription")
	}
	vpc := p["VpcId"]
	if vpc == "" {
		vpc = rg.vpcID
	}
	for _, g := range rg.groups {
		if g.Name == name && g.VPCID == vpc {
			return nil, errorf("InvalidGroup.Duplicate",
				"The security group '%s' already exists for VPC '%s'", name, vpc)
		}
	}
	var tags []Tag
	for _, ts := range p.list("TagSpecification") {
		if ts["ResourceType"] != "security-group" {
			return nil, errorf("InvalidParameterValue",
				"'%s' is not a valid taggable resource type for this operation.", ts["ResourceType"])
		}
		tags = append(tags, ts.tags()...)
	}
	g := s.addGroup(rg, Group{Name: name, Description: desc, VPCID: vpc, Tags: tags})
	return &createGroupResult{
		GroupID: g.ID, Tags: toXMLTags(g.Tags),
		ARN: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", rg.name, g.OwnerID, g.ID),
	}, nil
}

// addGroup stores a group and gives it the default egress rule.
func (s *Server) addGroup(rg *region, g Group) *Group {
	if g.ID == "" {
		g.ID = s.newID("sg")
	}
	if g.OwnerID == "" {
		g.OwnerID = s.account
	}
	if g.VPCID == "" {
		g.VPCID = rg.vpcID
	}
	if g.Name == "" {
		g.Name = g.ID
	}
	g.Tags = cloneTags(g.Tags)
	stored := &g
	rg.groups = append(rg.groups, stored)
	rg.groupByID[g.ID] = stored
	s.addRule(rg, &Rule{GroupID: g.ID, Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1,
		CIDRv4: "0.0.0.0/0"})
	return stored
}

func (s *Server) addRule(rg *region, r *Rule) {
	if r.ID == "" {
		r.ID = s.newID("sgr")
	}
	rg.rules = append(rg.rules, r)
	rg.ruleByID[r.ID] = r
	rg.ruleByKey[r.key()] = r
}

func (s *Server) describePrefixLists(rg *region, p params) (payload, *apiError) {
	ids := p.strings("PrefixListId")
	for _, id := range ids {
		if rg.plByID[id] == nil {
			return nil, errorf("InvalidPrefixListID.NotFound", "The prefix list ID '%s' does not exist", id)
		}
	}
	filters := p.filters()
	var match []*PrefixList
	for _, pl := range rg.prefixLists {
		if ids != nil && !slices.Contains(ids, pl.ID) {
			continue
		}
		ok := true
		for _, f := range filters {
			switch f.Name {
			case "prefix-list-id":
				ok = ok && slices.Contains(f.Values, pl.ID)
			case "prefix-list-name":
				ok = ok && slices.Contains(f.Values, pl.Name)
			case "owner-id":
				ok = ok && slices.Contains(f.Values, pl.OwnerID)
			default:
				return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid", f.Name)
			}
		}
		if ok {
			match = append(match, pl)
		}
	}
	start, end, next, e := s.page("DescribeManagedPrefixLists", p, len(match), 1, 100)
	if e != nil {
		return nil, e
	}
	out := &describePrefixListsResult{NextToken: next}
	for _, pl := range match[start:end] {
		out.PrefixLists = append(out.PrefixLists, xmlPrefixList{
			ID: pl.ID, AddressFamily: pl.AddressFamily, State: "create-complete",
			ARN:  fmt.Sprintf("arn:aws:ec2:%s:%s:prefix-list/%s", rg.name, pl.OwnerID, pl.ID),
			Name: pl.Name, MaxEntries: pl.MaxEntries, Version: 1, Tags: toXMLTags(pl.Tags),
			OwnerID: pl.OwnerID,
		})
	}
	return out, nil
}
