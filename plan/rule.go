package plan

import (
	"fmt"
	"net/netip"
	"strings"
)

// Family is an address family.
type Family string

// The address families. FamilyAny is used only for cloud references (a
// security group or a prefix list), whose family the reference itself decides.
const (
	IPv4      Family = "ipv4"
	IPv6      Family = "ipv6"
	FamilyAny Family = "any"
)

// Verdict says what a rule does to the packets it matches.
type Verdict string

// The verdicts. A backend that rejects rather than drops still reports Deny.
const (
	Allow Verdict = "allow"
	Deny  Verdict = "deny"
)

// Limit is a per-source connection limit.
type Limit struct {
	ConnectionsPerSource int `json:"connections_per_source"`
}

// Rule is one desired rule: one family, TCP, one port, one source.
//
// Source is a canonical CIDR (host bits cleared, as [netip.Prefix.Masked]
// prints it) or a cloud reference such as "sg-0a1b2c3d" or "pl-0123". Rules
// are compared by value; Description takes part in the comparison only to
// decide whether an owned rule needs an update.
type Rule struct {
	Family      Family  `json:"family"`
	Protocol    string  `json:"protocol"`
	Port        int     `json:"port"`
	Source      string  `json:"source"`
	Verdict     Verdict `json:"verdict"`
	Limit       *Limit  `json:"limit,omitempty"`
	Description string  `json:"description,omitempty"`

	// Line is the policy-file line of the entry the rule came from, 0 when
	// unknown. It is not part of the rule's identity.
	Line int `json:"line,omitempty"`

	// OneFamily is set for rules from anywhere-ipv4 or anywhere-ipv6: the
	// policy asked for one family on purpose. Like Line, it is not part of
	// the rule's identity, and plan files do not carry it.
	OneFamily bool `json:"-"`
	// AsWritten is the entry's description before the backend fitted it to
	// what it can store, when that changed it; not in plan files.
	AsWritten string `json:"-"`
}

// Key identifies a rule for the diff: everything but Description and Line.
func (r Rule) Key() string {
	k := fmt.Sprintf("%s/%s/%d/%s/%s", r.Family, r.Protocol, r.Port, r.Source, r.Verdict)
	if r.Limit != nil {
		k += fmt.Sprintf("/limit=%d", r.Limit.ConnectionsPerSource)
	}
	return k
}

// String renders the rule on one line, as the human plan shows it.
func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s/%d from %s", r.Verdict, r.Family, r.Protocol, r.Port, r.Source)
	if r.Limit != nil {
		fmt.Fprintf(&b, " limit %d/source", r.Limit.ConnectionsPerSource)
	}
	if r.Description != "" {
		fmt.Fprintf(&b, " %q", r.Description)
	}
	return b.String()
}

// IsCloudRef reports whether s names a cloud object (security group or prefix
// list) rather than an address.
func IsCloudRef(s string) bool {
	return strings.HasPrefix(s, "sg-") || strings.HasPrefix(s, "pl-")
}

// CanonicalSource turns an IP, a CIDR or a cloud reference into the form
// rules carry: "198.51.100.10" becomes "198.51.100.10/32", "10.1.2.3/8"
// becomes "10.0.0.0/8", IPv6 is printed in its canonical short form, and an
// IPv4-mapped IPv6 address is refused so that no rule is silently widened.
func CanonicalSource(s string) (string, Family, error) {
	s = strings.TrimSpace(s)
	if IsCloudRef(s) {
		return s, FamilyAny, nil
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("%q is not a valid CIDR", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", "", fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		if a.Zone() != "" {
			return "", "", fmt.Errorf("%q has a zone, which a firewall rule cannot use", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return "", "", fmt.Errorf("%q is an IPv4-mapped IPv6 address; write the IPv4 form", s)
	}
	p = p.Masked()
	if p.Addr().Is4() {
		return p.String(), IPv4, nil
	}
	return p.String(), IPv6, nil
}

// World returns the source that matches every address of a family.
func World(f Family) string {
	if f == IPv6 {
		return "::/0"
	}
	return "0.0.0.0/0"
}

// SourceContains reports whether every address of inner is also in outer.
// Cloud references contain only themselves.
func SourceContains(outer, inner string) bool {
	if outer == inner {
		return true
	}
	o, err1 := netip.ParsePrefix(outer)
	i, err2 := netip.ParsePrefix(inner)
	if err1 != nil || err2 != nil {
		return false
	}
	if o.Addr().Is4() != i.Addr().Is4() {
		return false
	}
	return o.Bits() <= i.Bits() && o.Contains(i.Addr())
}
