package ec2emu

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Tag is one key/value tag.
type Tag struct {
	Key, Value string
}

// Group is a security group as the emulator stores it.
type Group struct {
	ID          string // "sg-" and 17 hex digits; generated when empty
	Name        string
	Description string
	VPCID       string // defaults to the region's one VPC
	OwnerID     string // defaults to the server's account
	Tags        []Tag
}

// Rule is one security-group rule: one direction, one protocol and port
// range, and exactly one source.
type Rule struct {
	ID       string // "sgr-" and 17 hex digits; generated when empty
	GroupID  string
	Egress   bool
	Protocol string // "tcp", "udp", "icmp", "icmpv6", "-1" or an IANA number
	FromPort int    // -1 when the protocol ignores ports
	ToPort   int

	// Exactly one source is set.
	CIDRv4       string
	CIDRv6       string
	PrefixListID string
	RefGroupID   string
	RefUserID    string // owner account of RefGroupID

	Description string
	Tags        []Tag
}

// PrefixList is a managed prefix list. Only its identity, family and
// MaxEntries matter to the emulator: a rule naming it counts MaxEntries
// against the quota of the list's family.
type PrefixList struct {
	ID            string // "pl-" and 17 hex digits; generated when empty
	Name          string
	AddressFamily string // "IPv4" or "IPv6"
	MaxEntries    int
	OwnerID       string
	Tags          []Tag
}

// region holds the state of one region. Slices keep creation order, which
// is the order Describe calls list things in.
type region struct {
	name        string
	vpcID       string
	groups      []*Group
	groupByID   map[string]*Group
	rules       []*Rule
	ruleByID    map[string]*Rule
	ruleByKey   map[string]*Rule // Rule.key() -> rule; identities are unique
	prefixLists []*PrefixList
	plByID      map[string]*PrefixList
}

func newRegion(name string, vpcID string) *region {
	return &region{
		name:      name,
		vpcID:     vpcID,
		groupByID: map[string]*Group{},
		ruleByID:  map[string]*Rule{},
		ruleByKey: map[string]*Rule{},
		plByID:    map[string]*PrefixList{},
	}
}

var (
	groupIDPattern = regexp.MustCompile(`^sg-[0-9a-f]{8}([0-9a-f]{9})?$`)
	ruleIDPattern  = regexp.MustCompile(`^sgr-[0-9a-f]{17}$`)
	plIDPattern    = regexp.MustCompile(`^pl-[0-9a-f]{8}([0-9a-f]{9})?$`)
)

// sourceKey is the part of a rule's identity that names its source.
func (r *Rule) sourceKey() string {
	switch {
	case r.CIDRv4 != "":
		return "v4:" + r.CIDRv4
	case r.CIDRv6 != "":
		return "v6:" + r.CIDRv6
	case r.PrefixListID != "":
		return "pl:" + r.PrefixListID
	default:
		return "sg:" + r.RefGroupID
	}
}

// key is the rule's identity: direction, protocol, ports, source. The
// description is not part of it, as on AWS.
func (r *Rule) key() string {
	return fmt.Sprintf("%s|%t|%s|%d|%d|%s", r.GroupID, r.Egress, r.Protocol,
		r.FromPort, r.ToPort, r.sourceKey())
}

// peer renders the rule the way AWS's duplicate message does.
func (r *Rule) peer() string {
	src := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(
		strings.TrimPrefix(r.sourceKey(), "v4:"), "v6:"), "pl:"), "sg:")
	return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW",
		src, strings.ToUpper(r.Protocol), r.FromPort, r.ToPort)
}

// weights returns what the rule counts against the IPv4 and IPv6 quotas.
func (rg *region) weights(r *Rule) (v4, v6 int) {
	switch {
	case r.CIDRv4 != "":
		return 1, 0
	case r.CIDRv6 != "":
		return 0, 1
	case r.PrefixListID != "":
		pl := rg.plByID[r.PrefixListID]
		if pl == nil {
			return 1, 1
		}
		if pl.AddressFamily == "IPv6" {
			return 0, pl.MaxEntries
		}
		return pl.MaxEntries, 0
	default:
		return 1, 1
	}
}

// usage counts the quota a group's rules of one direction use per family.
func (rg *region) usage(groupID string, egress bool) (v4, v6 int) {
	for _, r := range rg.rules {
		if r.GroupID == groupID && r.Egress == egress {
			a, b := rg.weights(r)
			v4, v6 = v4+a, v6+b
		}
	}
	return v4, v6
}

// normalizeProtocol maps what a caller sends to what EC2 stores. Numbers for
// tcp, udp, icmp and icmpv6 and the word "all" are folded as moto does (AWS
// behaviour here is unverified).
func normalizeProtocol(p string) (string, bool) {
	switch strings.ToLower(p) {
	case "tcp", "6":
		return "tcp", true
	case "udp", "17":
		return "udp", true
	case "icmp", "1":
		return "icmp", true
	case "icmpv6", "58":
		return "icmpv6", true
	case "-1", "all":
		return "-1", true
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 {
		return "", false
	}
	return strconv.Itoa(n), true
}

// portsMatter reports whether the protocol takes a port range.
func portsMatter(proto string) bool {
	return proto == "tcp" || proto == "udp" || proto == "icmp" || proto == "icmpv6"
}

// canonicalCIDR parses a CIDR of the wanted family and clears host bits.
func canonicalCIDR(s string, v6 bool) (string, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || p.Addr().Is6() != v6 || p.Addr().Zone() != "" {
		return "", false
	}
	return p.Masked().String(), true
}

// descriptionOK applies EC2's rule-description character set and length.
func descriptionOK(d string) bool {
	if len(d) > 255 {
		return false
	}
	for _, c := range d {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune(" ._-:/()#,@[]+=&;{}!$*", c):
		default:
			return false
		}
	}
	return true
}

func cloneTags(t []Tag) []Tag { return slices.Clone(t) }

func hasTag(tags []Tag, key string, values []string) bool {
	for _, t := range tags {
		if t.Key == key && (values == nil || slices.Contains(values, t.Value)) {
			return true
		}
	}
	return false
}

func (rg *region) removeRules(ids map[string]bool) {
	rg.rules = slices.DeleteFunc(rg.rules, func(r *Rule) bool { return ids[r.ID] })
	for id := range ids {
		if r := rg.ruleByID[id]; r != nil {
			delete(rg.ruleByKey, r.key())
		}
		delete(rg.ruleByID, id)
	}
}
