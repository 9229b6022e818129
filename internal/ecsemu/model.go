package ecsemu

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Group is a security group as tests seed it.
type Group struct {
	ID          string // generated when empty
	Region      string // required
	Name        string
	Description string
	// VpcID is empty for a classic-network group.
	VpcID string
	// Type is "normal" (default) or "enterprise".
	Type string
	Tags map[string]string
}

// Rule is one security-group rule, in the emulator's normalised form:
// IpProtocol upper case, Policy "accept" or "drop", sources canonical.
type Rule struct {
	ID                 string // generated when empty
	Direction          string // "ingress" (default) or "egress"
	IpProtocol         string
	PortRange          string
	SourceCidrIp       string
	Ipv6SourceCidrIp   string
	SourceGroupId      string
	SourcePrefixListId string
	DestCidrIp         string
	SourcePortRange    string
	Policy             string
	Priority           int
	NicType            string
	Description        string
	CreateTime         time.Time
}

type group struct {
	Group
	created time.Time
	rules   []*Rule
}

var (
	groupIDShape = regexp.MustCompile(`^sg-[0-9a-z]{1,40}$`)
	portShape    = regexp.MustCompile(`^(-?\d+)/(-?\d+)$`)
)

const idChars = "0123456789abcdefghijklmnopqrstuvwxyz"

// newID returns prefix + "bp1" + 17 base-36 characters, the shape of
// cn-hangzhou ids. Callers hold e.mu.
func (e *Emulator) newID(prefix string) string {
	b := make([]byte, 17)
	for i := range b {
		b[i] = idChars[e.ids.IntN(len(idChars))]
	}
	return prefix + "bp1" + string(b)
}

// AddGroup creates a group and returns its id.
func (e *Emulator) AddGroup(g Group) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g.Region == "" {
		return "", fmt.Errorf("group %q has no region", g.ID)
	}
	if g.ID == "" {
		g.ID = e.newID("sg-")
	}
	if !groupIDShape.MatchString(g.ID) {
		return "", fmt.Errorf("group id %q is not of the form sg-[0-9a-z]+", g.ID)
	}
	if _, ok := e.groups[g.ID]; ok {
		return "", fmt.Errorf("group %s exists", g.ID)
	}
	if g.Type == "" {
		g.Type = "normal"
	}
	tags := map[string]string{}
	for k, v := range g.Tags {
		tags[k] = v
	}
	g.Tags = tags
	e.groups[g.ID] = &group{Group: g, created: e.now().UTC()}
	return g.ID, nil
}

// MustAddGroup is AddGroup for test setup; it panics on error.
func (e *Emulator) MustAddGroup(g Group) string {
	id, err := e.AddGroup(g)
	if err != nil {
		panic(err)
	}
	return id
}

// AddRule puts a rule into a group, as the console would, and returns its
// id. It applies the same validation as AuthorizeSecurityGroup but no quota
// and no duplicate check, so tests can seed duplicates on purpose.
func (e *Emulator) AddRule(groupID string, r Rule) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.groups[groupID]
	if !ok {
		return "", fmt.Errorf("no group %s", groupID)
	}
	if r.Direction == "" {
		r.Direction = "ingress"
	}
	fields := map[string]string{
		"IpProtocol": r.IpProtocol, "PortRange": r.PortRange, "SourceCidrIp": r.SourceCidrIp,
		"Ipv6SourceCidrIp": r.Ipv6SourceCidrIp, "SourceGroupId": r.SourceGroupId,
		"SourcePrefixListId": r.SourcePrefixListId, "Policy": r.Policy,
		"NicType": r.NicType, "Description": r.Description, "DestCidrIp": r.DestCidrIp,
		"SourcePortRange": r.SourcePortRange,
	}
	if r.Priority != 0 {
		fields["Priority"] = strconv.Itoa(r.Priority)
	}
	if r.Direction == "egress" && r.SourceCidrIp == "" && r.Ipv6SourceCidrIp == "" &&
		r.SourceGroupId == "" && r.SourcePrefixListId == "" {
		fields["SourceCidrIp"] = "0.0.0.0/0"
	}
	nr, aerr := validateRule(g, r.Direction, fields)
	if aerr != nil {
		return "", aerr
	}
	nr.ID = r.ID
	if nr.ID == "" {
		nr.ID = e.newID("sgr-")
	}
	nr.CreateTime = r.CreateTime
	if nr.CreateTime.IsZero() {
		nr.CreateTime = e.now().UTC()
	}
	g.rules = append(g.rules, nr)
	return nr.ID, nil
}

// RemoveRule deletes a rule as the console would and reports whether it
// existed.
func (e *Emulator) RemoveRule(groupID, ruleID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.groups[groupID]
	if !ok {
		return false
	}
	n := len(g.rules)
	g.remove(func(r *Rule) bool { return r.ID == ruleID })
	return len(g.rules) < n
}

// Rules returns a copy of a group's rules, ingress and egress, in the order
// DescribeSecurityGroupAttribute lists them.
func (e *Emulator) Rules(groupID string) []Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.groups[groupID]
	if !ok {
		return nil
	}
	out := make([]Rule, 0, len(g.rules))
	for _, r := range g.sorted() {
		out = append(out, *r)
	}
	return out
}

// IngressRules is Rules without the egress rules.
func (e *Emulator) IngressRules(groupID string) []Rule {
	var out []Rule
	for _, r := range e.Rules(groupID) {
		if r.Direction == "ingress" {
			out = append(out, r)
		}
	}
	return out
}

// sorted lists the rules by priority, then by creation.
func (g *group) sorted() []*Rule {
	rs := append([]*Rule(nil), g.rules...)
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].Priority < rs[b].Priority })
	return rs
}

// identity is what makes two rules the same rule: direction, protocol, port
// range, source, policy and NicType. Priority and description are
// attributes (unverified on the real service; see package doc).
func (r *Rule) identity() string {
	return strings.Join([]string{r.Direction, r.IpProtocol, r.PortRange, r.SourceCidrIp,
		r.Ipv6SourceCidrIp, r.SourceGroupId, r.SourcePrefixListId, r.DestCidrIp,
		r.SourcePortRange, r.Policy, r.NicType}, "|")
}

func (r *Rule) sourceKind() string {
	switch {
	case r.SourceCidrIp != "":
		return "ipv4"
	case r.Ipv6SourceCidrIp != "":
		return "ipv6"
	case r.SourceGroupId != "":
		return "group"
	default:
		return "prefix-list"
	}
}

// validateRule turns request fields into a normalised rule or the error the
// service sends for them.
func validateRule(g *group, direction string, f map[string]string) (*Rule, *apiError) {
	r := &Rule{Direction: direction}

	proto := strings.ToUpper(f["IpProtocol"])
	switch proto {
	case "TCP", "UDP", "ICMP", "ICMPV6", "GRE", "ALL":
	default:
		return nil, errorf(400, "InvalidIpProtocol.ValueNotSupported",
			"The specified IpProtocol %q is not supported.", f["IpProtocol"])
	}
	r.IpProtocol = proto

	pr, aerr := checkPortRange(proto, f["PortRange"])
	if aerr != nil {
		return nil, aerr
	}
	r.PortRange = pr

	if aerr := setSource(r, f); aerr != nil {
		return nil, aerr
	}

	switch strings.ToLower(f["Policy"]) {
	case "", "accept":
		r.Policy = "accept"
	case "drop":
		r.Policy = "drop"
	default:
		return nil, errorf(400, "InvalidPolicy.Malformed", "The specified Policy %q is not valid.", f["Policy"])
	}

	r.Priority = 1
	if s := f["Priority"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, errorf(400, "InvalidPriority.Malformed", "The specified Priority %q is not valid.", s)
		}
		if n < 1 || n > 100 {
			return nil, errorf(400, "InvalidPriority.ValueNotSupported",
				"The specified Priority %d is out of range 1-100.", n)
		}
		r.Priority = n
	}

	if d, ok := f["Description"]; ok && d != "" {
		if n := utf8.RuneCountInString(d); n > 512 {
			return nil, errorf(400, "InvalidSecurityGroupDiscription.Malformed",
				"The specified description is %d characters; it must be 1 to 512.", n)
		}
		r.Description = d
	}

	nic, aerr := checkNicType(g, f["NicType"])
	if aerr != nil {
		return nil, aerr
	}
	r.NicType = nic

	if g.Type == "enterprise" && (r.Policy == "drop" || r.SourceGroupId != "") {
		// NOTE: code as the reference names it for advanced groups.
		return nil, errorf(400, "InvalidGroupParameter.OperationDenied",
			"An enterprise security group does not support drop rules or group references.")
	}
	r.DestCidrIp = f["DestCidrIp"]
	r.SourcePortRange = f["SourcePortRange"]
	return r, nil
}

func checkPortRange(proto, s string) (string, *apiError) {
	if s == "" {
		return "", errorf(400, "InvalidPortRange.Malformed", "The PortRange parameter must set.")
	}
	m := portShape.FindStringSubmatch(s)
	if m == nil {
		return "", errorf(400, "InvalidParam.PortRange",
			"Specified PortRange %q is invalid, should be two integers less than 65535 in ?/? format.", s)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	switch proto {
	case "TCP", "UDP":
		if a < 1 || b > 65535 || a > b {
			return "", errorf(400, "InvalidParam.PortRange",
				"Specified PortRange %q is invalid, should be two integers less than 65535 in ?/? format.", s)
		}
	default:
		if a != -1 || b != -1 {
			return "", errorf(400, "OperationDenied",
				"The specified IpProtocol %s does not support PortRange %q; use -1/-1.", proto, s)
		}
	}
	return fmt.Sprintf("%d/%d", a, b), nil
}

func setSource(r *Rule, f map[string]string) *apiError {
	v4, v6 := f["SourceCidrIp"], f["Ipv6SourceCidrIp"]
	sg, pl := f["SourceGroupId"], f["SourcePrefixListId"]
	if v4 != "" && v6 != "" {
		return errorf(400, "InvalidParam.SourceIp",
			"SourceCidrIp and Ipv6SourceCidrIp cannot be specified at the same time.")
	}
	switch {
	case v4 != "":
		p, ok := canonicalPrefix(v4, true)
		if !ok {
			return errorf(400, "InvalidSourceCidrIp.Malformed", "The specified SourceCidrIp %q is not valid.", v4)
		}
		r.SourceCidrIp = p
	case v6 != "":
		p, ok := canonicalPrefix(v6, false)
		if !ok {
			return errorf(400, "InvalidParam.Ipv6SourceCidrIp",
				"The specified Ipv6SourceCidrIp %q is not valid.", v6)
		}
		r.Ipv6SourceCidrIp = p
	case sg != "":
		if !groupIDShape.MatchString(sg) {
			return errorf(400, "InvalidSecurityGroupId.Malformed", "The specified SourceGroupId %q is not valid.", sg)
		}
		r.SourceGroupId = sg
	case pl != "":
		r.SourcePrefixListId = pl
	default:
		return errorf(400, "MissingParameter.Source",
			"One of SourceCidrIp, Ipv6SourceCidrIp, SourceGroupId or SourcePrefixListId must be set.")
	}
	return nil
}

// canonicalPrefix parses an address or CIDR of the given family and returns
// it with host bits cleared. A bare IPv4 address stays bare, as the console
// stores it; a bare IPv6 address too.
func canonicalPrefix(s string, v4 bool) (string, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Is4() != v4 || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is4() != v4 {
		return "", false
	}
	return p.Masked().String(), true
}

func checkNicType(g *group, s string) (string, *apiError) {
	switch strings.ToLower(s) {
	case "", "internet", "intranet":
	default:
		return "", errorf(400, "InvalidNicType.ValueNotSupported", "The specified NicType %q is not supported.", s)
	}
	if g.VpcID != "" {
		return "intranet", nil // VPC groups hold intranet rules only
	}
	if s == "" {
		return "internet", nil
	}
	return strings.ToLower(s), nil
}

// count is the quota usage of a group: ingress and egress rules together.
func (g *group) count() int { return len(g.rules) }

func (g *group) groupRefs() int {
	n := 0
	for _, r := range g.rules {
		if r.SourceGroupId != "" {
			n++
		}
	}
	return n
}
