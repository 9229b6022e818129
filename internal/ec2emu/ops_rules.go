package ec2emu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

func (s *Server) describeRules(rg *region, p params) (payload, *apiError) {
	ids := p.strings("SecurityGroupRuleId")
	for _, id := range ids {
		if rg.ruleByID[id] == nil {
			return nil, errorf("InvalidSecurityGroupRuleId.NotFound",
				"The security group rule ID '%s' does not exist", id)
		}
	}
	filters := p.filters()
	for _, f := range filters {
		switch {
		case f.Name == "group-id":
			for _, v := range f.Values {
				if e := checkGroupID(v); e != nil {
					return nil, e
				}
			}
		case f.Name == "security-group-rule-id", f.Name == "tag-key",
			strings.HasPrefix(f.Name, "tag:"):
		default:
			return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid", f.Name)
		}
	}
	idSet := setOf(ids)
	var match []*Rule
	for _, r := range rg.rules {
		if (ids == nil || idSet[r.ID]) && ruleMatches(r, filters) {
			match = append(match, r)
		}
	}
	start, end, next, e := s.page("DescribeSecurityGroupRules", p, len(match), 5, 1000)
	if e != nil {
		return nil, e
	}
	out := &describeRulesResult{NextToken: next}
	for _, r := range match[start:end] {
		out.Rules = append(out.Rules, rg.ruleXML(r))
	}
	return out, nil
}

func setOf(vs []string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

func ruleMatches(r *Rule, filters []filter) bool {
	for _, f := range filters {
		var ok bool
		switch {
		case f.Name == "group-id":
			ok = slices.Contains(f.Values, r.GroupID)
		case f.Name == "security-group-rule-id":
			ok = slices.Contains(f.Values, r.ID)
		case f.Name == "tag-key":
			ok = slices.ContainsFunc(f.Values, func(k string) bool { return hasTag(r.Tags, k, nil) })
		case strings.HasPrefix(f.Name, "tag:"):
			ok = hasTag(r.Tags, strings.TrimPrefix(f.Name, "tag:"), f.Values)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (rg *region) ruleXML(r *Rule) xmlRule {
	owner := ""
	if g := rg.groupByID[r.GroupID]; g != nil {
		owner = g.OwnerID
	}
	x := xmlRule{
		ID: r.ID, GroupID: r.GroupID, GroupOwnerID: owner, IsEgress: r.Egress,
		IPProtocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort,
		CIDRv4: r.CIDRv4, CIDRv6: r.CIDRv6, PrefixListID: r.PrefixListID,
		Description: r.Description, Tags: toXMLTags(r.Tags),
		ARN: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group-rule/%s", rg.name, owner, r.ID),
	}
	if r.RefGroupID != "" {
		x.Ref = &xmlRefGroup{GroupID: r.RefGroupID, UserID: r.RefUserID}
	}
	return x
}

// lookupGroup resolves the GroupId parameter.
func lookupGroup(rg *region, p params) (*Group, *apiError) {
	id := p["GroupId"]
	if id == "" {
		if name := p["GroupName"]; name != "" {
			for _, g := range rg.groups {
				if g.Name == name && g.VPCID == rg.vpcID {
					return g, nil
				}
			}
			return nil, errorf("InvalidGroup.NotFound",
				"The security group '%s' does not exist in default VPC '%s'", name, rg.vpcID)
		}
		return nil, errorf("MissingParameter", "The request must contain the parameter groupId")
	}
	if e := checkGroupID(id); e != nil {
		return nil, e
	}
	g := rg.groupByID[id]
	if g == nil {
		return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	return g, nil
}

// parsePermissions turns IpPermissions.N into one Rule per source.
func (s *Server) parsePermissions(rg *region, g *Group, egress bool, p params) ([]*Rule, *apiError) {
	var out []*Rule
	for _, perm := range p.list("IpPermissions") {
		proto, ok := normalizeProtocol(perm["IpProtocol"])
		if !ok {
			return nil, errorf("InvalidParameterValue",
				"Invalid value '%s' for IP protocol. Unknown protocol.", perm["IpProtocol"])
		}
		from, to, e := parsePorts(proto, perm)
		if e != nil {
			return nil, e
		}
		base := Rule{GroupID: g.ID, Egress: egress, Protocol: proto, FromPort: from, ToPort: to}
		n := len(out)
		for _, r := range perm.list("IpRanges") {
			cidr, ok := canonicalCIDR(r["CidrIp"], false)
			if !ok {
				return nil, errorf("InvalidParameterValue", "CIDR block %s is malformed", r["CidrIp"])
			}
			rule := base
			rule.CIDRv4, rule.Description = cidr, r["Description"]
			out = append(out, &rule)
		}
		for _, r := range perm.list("Ipv6Ranges") {
			cidr, ok := canonicalCIDR(r["CidrIpv6"], true)
			if !ok {
				return nil, errorf("InvalidParameterValue", "CIDR block %s is malformed", r["CidrIpv6"])
			}
			rule := base
			rule.CIDRv6, rule.Description = cidr, r["Description"]
			out = append(out, &rule)
		}
		for _, r := range perm.list("PrefixListIds") {
			id := r["PrefixListId"]
			if rg.plByID[id] == nil {
				return nil, errorf("InvalidPrefixListID.NotFound", "The prefix list ID '%s' does not exist", id)
			}
			rule := base
			rule.PrefixListID, rule.Description = id, r["Description"]
			out = append(out, &rule)
		}
		for _, r := range perm.list("Groups") {
			rule, e := s.pairRule(rg, base, r)
			if e != nil {
				return nil, e
			}
			out = append(out, rule)
		}
		if len(out) == n {
			return nil, errorf("MissingParameter",
				"Either CidrIp, Ipv6CidrIp, PrefixListId or a source security group must be specified")
		}
	}
	if len(out) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter ipPermissions")
	}
	for _, r := range out {
		if !descriptionOK(r.Description) {
			return nil, errorf("InvalidParameterValue",
				"Invalid rule description. Valid descriptions are strings less than 256 characters "+
					"from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*")
		}
	}
	return out, nil
}

func (s *Server) pairRule(rg *region, base Rule, r params) (*Rule, *apiError) {
	id, user := r["GroupId"], r["UserId"]
	if id == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter groupId")
	}
	if e := checkGroupID(id); e != nil {
		return nil, e
	}
	if user == "" {
		user = s.account
	}
	if user == s.account && rg.groupByID[id] == nil {
		return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	rule := base
	rule.RefGroupID, rule.RefUserID, rule.Description = id, user, r["Description"]
	return &rule, nil
}

func parsePorts(proto string, perm params) (int, int, *apiError) {
	if !portsMatter(proto) {
		return -1, -1, nil
	}
	fs, fok := perm["FromPort"]
	ts, tok := perm["ToPort"]
	from, ferr := strconv.Atoi(fs)
	to, terr := strconv.Atoi(ts)
	if proto == "icmpv6" && !fok && !tok {
		return -1, -1, nil
	}
	if !fok || !tok || ferr != nil || terr != nil {
		return 0, 0, errorf("InvalidParameterValue",
			"Invalid value for portRange. Must specify both from and to ports with TCP/UDP.")
	}
	if proto == "icmp" || proto == "icmpv6" {
		if from < -1 || from > 255 || to < -1 || to > 255 || (from == -1 && to != -1) {
			return 0, 0, errorf("InvalidParameterValue", "Invalid ICMP type/code %d/%d", from, to)
		}
		return from, to, nil
	}
	if from < 0 || to > 65535 || from > to {
		return 0, 0, errorf("InvalidParameterValue",
			"Invalid TCP/UDP port range %d-%d", from, to)
	}
	return from, to, nil
}

func authorize(egress bool) func(*Server, *region, params) (payload, *apiError) {
	return func(s *Server, rg *region, p params) (payload, *apiError) {
		g, e := lookupGroup(rg, p)
		if e != nil {
			return nil, e
		}
		rules, e := s.parsePermissions(rg, g, egress, p)
		if e != nil {
			return nil, e
		}
		var tags []Tag
		for _, ts := range p.list("TagSpecification") {
			if ts["ResourceType"] != "security-group-rule" {
				return nil, errorf("InvalidParameterValue",
					"'%s' is not a valid taggable resource type for this operation.", ts["ResourceType"])
			}
			tags = append(tags, ts.tags()...)
		}
		if e := s.checkAdd(rg, g.ID, egress, rules); e != nil {
			return nil, e
		}
		out := &authorizeResult{Return: true}
		for _, r := range rules {
			r.Tags = cloneTags(tags)
			s.addRule(rg, r)
			out.Rules = append(out.Rules, rg.ruleXML(r))
		}
		return out, nil
	}
}

// checkAdd refuses in-request duplicates, existing duplicates and quota
// overruns, in that order.
func (s *Server) checkAdd(rg *region, groupID string, egress bool, rules []*Rule) *apiError {
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.key()] {
			return errorf("InvalidParameterValue", "The same permission must not appear multiple times")
		}
		seen[r.key()] = true
	}
	for _, r := range rules {
		if have := rg.ruleByKey[r.key()]; have != nil {
			return errorf("InvalidPermission.Duplicate", "the specified rule %q already exists", have.peer())
		}
	}
	v4, v6 := rg.usage(groupID, egress)
	for _, r := range rules {
		a, b := rg.weights(r)
		v4, v6 = v4+a, v6+b
	}
	if v4 > s.quota || v6 > s.quota {
		return errorf("RulesPerSecurityGroupLimitExceeded",
			"The maximum number of rules per security group has been reached.")
	}
	return nil
}

func revokedXML(r *Rule) xmlRevokedRule {
	return xmlRevokedRule{
		ID: r.ID, GroupID: r.GroupID, IsEgress: r.Egress, IPProtocol: r.Protocol,
		FromPort: r.FromPort, ToPort: r.ToPort, CIDRv4: r.CIDRv4, CIDRv6: r.CIDRv6,
		PrefixListID: r.PrefixListID, RefGroupID: r.RefGroupID, Description: r.Description,
	}
}

// rulesByID resolves SecurityGroupRuleId-style lists; every id must name a
// rule of the group in that direction.
func rulesByID(rg *region, g *Group, egress bool, ids []string) ([]*Rule, *apiError) {
	var out []*Rule
	for _, id := range ids {
		r := rg.ruleByID[id]
		if r == nil || r.GroupID != g.ID || r.Egress != egress {
			return nil, errorf("InvalidSecurityGroupRuleId.NotFound",
				"The security group rule ID '%s' does not exist", id)
		}
		out = append(out, r)
	}
	return out, nil
}

// rulesByProperties finds the stored rule matching each wanted rule exactly.
func rulesByProperties(rg *region, wanted []*Rule) ([]*Rule, *apiError) {
	var out []*Rule
	for _, w := range wanted {
		r := rg.ruleByKey[w.key()]
		if r == nil {
			return nil, errorf("InvalidPermission.NotFound",
				"The specified rule does not exist in this security group.")
		}
		out = append(out, r)
	}
	return out, nil
}

// rulesFound is rulesByProperties for a default VPC: it returns the stored
// rules that match and, as permissions, the wanted rules that match none.
func rulesFound(rg *region, wanted []*Rule) ([]*Rule, []xmlPermission) {
	var found []*Rule
	var unknown []xmlPermission
	for _, w := range wanted {
		if r := rg.ruleByKey[w.key()]; r != nil {
			found = append(found, r)
			continue
		}
		perm := xmlPermission{IPProtocol: w.Protocol}
		if w.Protocol != "-1" {
			from, to := w.FromPort, w.ToPort
			perm.FromPort, perm.ToPort = &from, &to
		}
		addSource(&perm, w)
		unknown = append(unknown, perm)
	}
	return found, unknown
}

func revoke(egress bool) func(*Server, *region, params) (payload, *apiError) {
	return func(s *Server, rg *region, p params) (payload, *apiError) {
		g, e := lookupGroup(rg, p)
		if e != nil {
			return nil, e
		}
		ids := p.strings("SecurityGroupRuleId")
		hasPerms := len(p.list("IpPermissions")) > 0
		var rules []*Rule
		var unknown []xmlPermission
		switch {
		case ids != nil && hasPerms:
			return nil, errorf("InvalidParameterCombination",
				"You may specify either security group rule IDs or IP permissions, not both")
		case ids != nil:
			rules, e = rulesByID(rg, g, egress, ids)
		default:
			var wanted []*Rule
			if wanted, e = s.parsePermissions(rg, g, egress, p); e == nil && s.defaultVPC {
				rules, unknown = rulesFound(rg, wanted)
			} else if e == nil {
				rules, e = rulesByProperties(rg, wanted)
			}
		}
		if e != nil {
			return nil, e
		}
		out := &revokeResult{Return: true, Unknown: unknown}
		gone := map[string]bool{}
		for _, r := range rules {
			if !gone[r.ID] {
				out.Revoked = append(out.Revoked, revokedXML(r))
			}
			gone[r.ID] = true
		}
		rg.removeRules(gone)
		return out, nil
	}
}

func updateDescriptions(egress bool) func(*Server, *region, params) (payload, *apiError) {
	return func(s *Server, rg *region, p params) (payload, *apiError) {
		g, e := lookupGroup(rg, p)
		if e != nil {
			return nil, e
		}
		descs := p.list("SecurityGroupRuleDescription")
		newDesc := map[*Rule]string{}
		if len(descs) > 0 {
			for _, d := range descs {
				rules, e := rulesByID(rg, g, egress, []string{d["SecurityGroupRuleId"]})
				if e != nil {
					return nil, e
				}
				newDesc[rules[0]] = d["Description"]
			}
		} else {
			wanted, e := s.parsePermissions(rg, g, egress, p)
			if e != nil {
				return nil, e
			}
			rules, e := rulesByProperties(rg, wanted)
			if e != nil {
				return nil, e
			}
			for i, r := range rules {
				newDesc[r] = wanted[i].Description
			}
		}
		for _, d := range newDesc {
			if !descriptionOK(d) {
				return nil, errorf("InvalidParameterValue",
					"Invalid rule description. Valid descriptions are strings less than 256 "+
						"characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*")
			}
		}
		for r, d := range newDesc {
			r.Description = d
		}
		return &returnResult{Return: true}, nil
	}
}

func (s *Server) modifyRules(rg *region, p params) (payload, *apiError) {
	g, e := lookupGroup(rg, p)
	if e != nil {
		return nil, e
	}
	type change struct {
		old  *Rule
		next Rule
	}
	var changes []change
	for _, m := range p.list("SecurityGroupRule") {
		id := m["SecurityGroupRuleId"]
		old := rg.ruleByID[id]
		if old == nil || old.GroupID != g.ID {
			return nil, errorf("InvalidSecurityGroupRuleId.NotFound",
				"The security group rule ID '%s' does not exist", id)
		}
		next, e := s.modifiedRule(rg, old, m)
		if e != nil {
			return nil, e
		}
		changes = append(changes, change{old, next})
	}
	if len(changes) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter securityGroupRules")
	}
	for _, c := range changes {
		if r := rg.ruleByKey[c.next.key()]; r != nil && r != c.old {
			return nil, errorf("InvalidPermission.Duplicate", "the specified rule %q already exists", r.peer())
		}
	}
	for _, c := range changes {
		delete(rg.ruleByKey, c.old.key())
		tags := c.old.Tags
		*c.old = c.next
		c.old.Tags = tags
		rg.ruleByKey[c.old.key()] = c.old
	}
	return &returnResult{Return: true}, nil
}

// modifiedRule builds the full replacement ModifySecurityGroupRules asks for.
func (s *Server) modifiedRule(rg *region, old *Rule, m params) (Rule, *apiError) {
	spec := params{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, "SecurityGroupRule."); ok {
			spec[rest] = v
		}
	}
	proto, ok := normalizeProtocol(spec["IpProtocol"])
	if spec["IpProtocol"] == "" {
		return Rule{}, errorf("InvalidParameterValue",
			"Invalid value 'null' for protocol. VPC security group rules must specify protocols explicitly.")
	}
	if !ok {
		return Rule{}, errorf("InvalidParameterValue",
			"Invalid value '%s' for IP protocol. Unknown protocol.", spec["IpProtocol"])
	}
	from, to, e := parsePorts(proto, spec)
	if e != nil {
		return Rule{}, e
	}
	next := Rule{ID: old.ID, GroupID: old.GroupID, Egress: old.Egress, Protocol: proto,
		FromPort: from, ToPort: to, Description: spec["Description"]}
	sources := 0
	if v := spec["CidrIpv4"]; v != "" {
		sources++
		if next.CIDRv4, ok = canonicalCIDR(v, false); !ok {
			return Rule{}, errorf("InvalidParameterValue", "CIDR block %s is malformed", v)
		}
	}
	if v := spec["CidrIpv6"]; v != "" {
		sources++
		if next.CIDRv6, ok = canonicalCIDR(v, true); !ok {
			return Rule{}, errorf("InvalidParameterValue", "CIDR block %s is malformed", v)
		}
	}
	if v := spec["PrefixListId"]; v != "" {
		sources++
		next.PrefixListID = v
	}
	if v := spec["ReferencedGroupId"]; v != "" {
		sources++
		next.RefGroupID, next.RefUserID = v, s.account
	}
	if sources != 1 {
		return Rule{}, errorf("InvalidParameterCombination",
			"Exactly one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId must be specified")
	}
	if (old.CIDRv4 != "") != (next.CIDRv4 != "") && (old.CIDRv6 != "" || next.CIDRv6 != "") {
		return Rule{}, errorf("InvalidParameterValue", "You cannot change the IP family of rule %s", old.ID)
	}
	if !descriptionOK(next.Description) {
		return Rule{}, errorf("InvalidParameterValue", "Invalid rule description.")
	}
	return next, nil
}
