package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
)

// Observed is one rule as a backend reports it. Backends translate what they
// read into Observed values; they do not judge them. Rules the backend cannot
// translate at all are left out and, where it matters, reported as a finding
// by the backend.
type Observed struct {
	// ID is the backend's own handle for the rule (an AWS "sgr-" id, an
	// iptables rule spec, a ufw rule tuple). It is opaque to plan and is
	// handed back to the backend in a removal or update.
	ID string `json:"id,omitempty"`

	Family   Family  `json:"family"`
	Protocol string  `json:"protocol"` // "tcp", "udp", "all"
	PortFrom int     `json:"port"`     // 1..65535; PortFrom = 1, PortTo = 65535 for all ports
	PortTo   int     `json:"port_to"`
	Source   string  `json:"source"` // canonical CIDR or cloud reference; never empty
	Verdict  Verdict `json:"verdict"`
	Limit    *Limit  `json:"limit,omitempty"`

	// Owned is true when the rule carries mailfw's mark.
	Owned bool `json:"owned,omitempty"`
	// Description is the text after the mark for owned rules ("office
	// clients" for "mailfw: office clients"), else the rule's own comment.
	Description string `json:"description,omitempty"`

	// Order places the rule in evaluation order within its scope: a packet
	// meets lower orders first. Backends without an order (AWS) leave it 0.
	Order int `json:"order,omitempty"`

	// Conditional is true when the rule has matches mailfw does not model
	// (an interface, a conntrack state, a rate). Such a rule never satisfies
	// a desired rule and never counts as certainly shadowing one.
	Conditional bool `json:"conditional,omitempty"`
	// Fixed is true when mailfw must never remove the rule even in
	// exclusive mode (a firewalld zone service, another tool's ban).
	Fixed bool `json:"fixed,omitempty"`
	// Volatile marks rules another tool adds and lifts all the time (a
	// fail2ban ban). They take part in the diff but not in State.Digest, so
	// a ban coming or going does not make a saved plan stale.
	Volatile bool `json:"volatile,omitempty"`
	// Origin says where the rule lives, for people: "INPUT", "chain f2b-sshd",
	// "zone public service smtp", "ufw app Postfix".
	Origin string `json:"origin,omitempty"`
}

// Covers reports whether o matches every packet the desired rule r matches
// (same family, TCP or all protocols, r's port inside o's range, r's source
// inside o's source).
func (o *Observed) Covers(r Rule) bool { return o.coversWith(r, SourceContains) }

// coversWith is Covers with the source test given, so the diff can use
// its cache of parsed prefixes.
func (o *Observed) coversWith(r Rule, contains func(outer, inner string) bool) bool {
	if o.Family != r.Family && o.Family != FamilyAny && r.Family != FamilyAny {
		return false
	}
	if o.Protocol != "all" && o.Protocol != r.Protocol {
		return false
	}
	if r.Port < o.PortFrom || r.Port > o.PortTo {
		return false
	}
	return contains(o.Source, r.Source)
}

// Broad reports whether o spans more than one port or every protocol.
func (o Observed) Broad() bool {
	return o.Protocol == "all" || o.PortFrom != o.PortTo
}

// AsRule returns the single-port rule o is, and false when o is broad.
func (o Observed) AsRule() (Rule, bool) {
	if o.Broad() {
		return Rule{}, false
	}
	return Rule{
		Family: o.Family, Protocol: o.Protocol, Port: o.PortFrom,
		Source: o.Source, Verdict: o.Verdict, Limit: o.Limit,
		Description: o.Description,
	}, true
}

// String renders o on one line.
func (o Observed) String() string {
	ports := fmt.Sprint(o.PortFrom)
	if o.PortFrom == 1 && o.PortTo == 65535 {
		ports = "any"
	} else if o.PortFrom != o.PortTo {
		ports = fmt.Sprintf("%d-%d", o.PortFrom, o.PortTo)
	}
	s := fmt.Sprintf("%s %s %s/%s from %s", o.Verdict, o.Family, o.Protocol, ports, o.Source)
	if o.Limit != nil {
		s += fmt.Sprintf(" limit %d/source", o.Limit.ConnectionsPerSource)
	}
	if o.Origin != "" {
		s += " (" + o.Origin + ")"
	}
	return s
}

// Scope is one independent rule set within a target: one security group, or
// the host's one input path. Desired rules apply to every scope of a target.
type Scope struct {
	// ID names the scope ("sg-0a1b2c3d4e5f60718 (us-east-1)", "INPUT").
	ID    string     `json:"id"`
	Rules []Observed `json:"rules"`

	// AllowOrder and DenyOrder are the orders at which rules mailfw adds
	// will be evaluated, so the diff can tell whether an earlier rule makes
	// them dead. Backends without an order leave both 0.
	AllowOrder int `json:"allow_order,omitempty"`
	DenyOrder  int `json:"deny_order,omitempty"`

	// Quota is the most rules the scope may hold per family, 0 when
	// unlimited. QuotaUsed counts what is used now, per family; a backend
	// that counts a reference against both families does so here.
	// QuotaShared says the quota counts all families together (Alibaba).
	Quota       int            `json:"quota,omitempty"`
	QuotaUsed   map[Family]int `json:"quota_used,omitempty"`
	QuotaShared bool           `json:"quota_shared,omitempty"`
}

// State is what a backend read from its target.
type State struct {
	// Kind is the concrete backend, for example "iptables (nf_tables)";
	// it tells the user what auto-detection chose.
	Kind   string  `json:"kind"`
	Scopes []Scope `json:"scopes"`
	// IPv6 is false when the target cannot filter IPv6 at all (ufw with
	// IPV6=no); the diff then plans no IPv6 rule and says so.
	IPv6 bool `json:"ipv6"`
	// Findings are the backend's own observations (ufw inactive, firewalld
	// runtime and permanent differing) added to the ones plan computes.
	Findings []Finding `json:"findings,omitempty"`
	// Listening lists the TCP ports a local process listens on, for local
	// targets; nil when unknown (cloud targets). It is not part of Digest.
	Listening []int `json:"listening,omitempty"`
	// Extra is anything else the backend read that should make a saved
	// plan stale when it changes (the position of a jump, a zone binding).
	Extra string `json:"extra,omitempty"`
}

// Digest is the fingerprint of s stored in a plan file: a SHA-256 over its
// canonical JSON, with rules sorted so the order a backend listed them in
// does not matter unless their Order does.
func (s *State) Digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "kind=%q ipv6=%t extra=%q\n", s.Kind, s.IPv6, s.Extra)
	scopes := append([]Scope(nil), s.Scopes...)
	sort.Slice(scopes, func(a, b int) bool { return scopes[a].ID < scopes[b].ID })
	for _, sc := range scopes {
		fmt.Fprintf(h, "scope=%q allow=%d deny=%d quota=%d\n",
			sc.ID, sc.AllowOrder, sc.DenyOrder, sc.Quota)
		lines := make([]string, 0, len(sc.Rules))
		for _, r := range sc.Rules {
			if r.Volatile {
				continue
			}
			b, err := json.Marshal(r)
			if err != nil {
				panic(err) // Observed holds only plain data
			}
			lines = append(lines, string(b))
		}
		sort.Strings(lines)
		for _, l := range lines {
			h.Write([]byte(l))
			h.Write([]byte{'\n'})
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
