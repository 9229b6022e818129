package firewalld

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// Names and priorities of the policy objects mailfw writes. A policy's
// priority places it before every zone when negative and after them when
// positive; denies must beat zone allows and allows must not pre-empt
// bans that other tools put into zones.
const (
	AllowPolicy   = "mailfw-allow"
	DenyPolicy    = "mailfw-deny"
	AllowPriority = 100
	DenyPriority  = -100
	ownedPrefix   = "mailfw"
)

// The finding ids this backend adds to the ones plan computes.
const (
	FindingRuntimePermanent = "firewalld-runtime-permanent"
	FindingSourceZone       = "firewalld-source-zone-no-mail"
	FindingForeignRule      = "firewalld-foreign-rule"
	FindingPolicyAltered    = "firewalld-policy-altered"
	FindingReloadNeeded     = "firewalld-reload-needed"
)

// ScopeID is the one scope a firewalld target has: traffic to the host.
const ScopeID = "firewalld ANY>HOST"

var mailPorts = []int{25, 465, 587}

// order places a rule of a zone or policy of the given priority (zones
// count as 0) in evaluation order; inner orders the chains of one zone or
// policy: rich rules with a negative priority, denies, allows, rich rules
// with a positive priority.
func order(priority, inner int) int { return (40000+priority)*10 + inner }

func innerOrder(rulePriority int, v plan.Verdict) int {
	switch {
	case rulePriority < 0:
		return 1
	case rulePriority > 0:
		return 7
	case v == plan.Deny:
		return 3
	}
	return 5
}

// reading is everything Read gathered, before translation.
type reading struct {
	runtime, permanent view
	services           map[string][]portSpec
	defaultZone        string
	zone               string // the zone whose interface traffic counts
	version            string
}

// holder is the context a zone or policy gives its rules.
type holder struct {
	kind, name string
	priority   int
	// sources restricts rules to these canonical CIDRs (a source-bound
	// zone); nil means no restriction.
	sources []string
	// conditional marks every rule: it applies to some interfaces only.
	conditional bool
	// shadowSources are the sources bound to other zones: packets from
	// them never reach this interface-bound zone.
	shadowSources []string
}

func (h holder) origin(what string) string { return h.kind + " " + h.name + " " + what }

func (h holder) id(what string) string { return h.kind + ":" + h.name + "|" + what }

// grant is one port range a zone item opens or closes, before sources.
type grant struct {
	proto    string // tcp, udp, all
	from, to int
}

func specGrants(specs []portSpec) []grant {
	var out []grant
	for _, s := range specs {
		if s.Proto == "tcp" || s.Proto == "udp" {
			out = append(out, grant{s.Proto, s.From, s.To})
		}
	}
	return out
}

// expand makes the Observed rules of one item: every grant, for every
// family and source, restricted to the holder's sources.
func (h holder) expand(base plan.Observed, grants []grant, fams []plan.Family, src string) []plan.Observed {
	var out []plan.Observed
	for _, g := range grants {
		for _, f := range fams {
			s := plan.World(f)
			if src != "" {
				c, sf, err := plan.CanonicalSource(src)
				if err != nil || sf != f {
					continue
				}
				s = c
			}
			for _, eff := range h.restrict(s, f) {
				o := base
				o.Family, o.Protocol, o.PortFrom, o.PortTo, o.Source = f, g.proto, g.from, g.to, eff
				if h.conditional || h.shadowed(eff) {
					o.Conditional = true
				}
				out = append(out, o)
			}
		}
	}
	return out
}

// restrict intersects src with the holder's sources.
func (h holder) restrict(src string, f plan.Family) []string {
	if h.sources == nil {
		return []string{src}
	}
	var out []string
	for _, zs := range h.sources {
		switch {
		case plan.SourceContains(zs, src):
			out = append(out, src)
		case plan.SourceContains(src, zs):
			out = append(out, zs)
		}
	}
	return out
}

func (h holder) shadowed(src string) bool {
	for _, s := range h.shadowSources {
		if plan.SourceContains(s, src) || plan.SourceContains(src, s) {
			return true
		}
	}
	return false
}

// richObserved translates a rich rule that mailfw does not own.
func (rd *reading) richObserved(h holder, rr richRule) []plan.Observed {
	var v plan.Verdict
	switch rr.Action {
	case "accept":
		v = plan.Allow
	case "reject", "drop":
		v = plan.Deny
	default:
		return nil // log, audit or mark only: no verdict
	}
	var grants []grant
	switch rr.Element {
	case "port":
		ps, err := parsePortRange(rr.Port, rr.Protocol)
		if err != nil {
			return nil
		}
		grants = specGrants([]portSpec{ps})
	case "service":
		grants = specGrants(rd.services[rr.Service])
	case "protocol":
		if rr.Protocol == "tcp" || rr.Protocol == "udp" {
			grants = []grant{{rr.Protocol, 1, 65535}}
		}
	case "":
		grants = []grant{{"all", 1, 65535}}
	}
	base := plan.Observed{
		ID: h.id(rr.Text), Verdict: v, Fixed: true,
		Order:       order(h.priority, innerOrder(rr.Priority, v)),
		Conditional: rr.SourceNot || rr.SourceOther != "" || rr.Destination || rr.ActionLimit != "",
		Origin:      h.origin("rich rule"),
	}
	src := rr.Source
	if rr.SourceNot || rr.SourceOther != "" {
		src = ""
	}
	return h.expand(base, grants, rr.families(), src)
}

// blockObserved translates the services, ports, protocols and rich rules
// of a zone or policy that mailfw does not own.
func (rd *reading) blockObserved(h holder, b *block) []plan.Observed {
	both := []plan.Family{plan.IPv4, plan.IPv6}
	var out []plan.Observed
	allow := func(what string, grants []grant) {
		base := plan.Observed{ID: h.id(what), Verdict: plan.Allow, Fixed: true,
			Order: order(h.priority, 5), Origin: h.origin(what)}
		out = append(out, h.expand(base, grants, both, "")...)
	}
	for _, s := range b.Fields["services"] {
		allow("service "+s, specGrants(rd.services[s]))
	}
	for _, p := range b.Fields["ports"] {
		if ps, err := parsePortSpec(p); err == nil {
			allow("port "+p, specGrants([]portSpec{ps}))
		}
	}
	for _, p := range b.Fields["protocols"] {
		if p == "tcp" || p == "udp" {
			allow("protocol "+p, []grant{{p, 1, 65535}})
		}
	}
	if h.kind == "zone" && b.one("target") == "ACCEPT" {
		allow("target ACCEPT", []grant{{"all", 1, 65535}})
	}
	for _, text := range b.Fields["rich rules"] {
		rr, err := parseRichRule(text)
		if err != nil {
			continue
		}
		out = append(out, rd.richObserved(h, rr)...)
	}
	return out
}

// ownedRule turns a rich rule of a mailfw policy into an owned rule when it
// has exactly the shape mailfw writes.
func ownedRule(policy string, rr richRule) (plan.Observed, bool) {
	if rr.Priority != 0 || rr.SourceNot || rr.SourceOther != "" || rr.Destination ||
		rr.Element != "port" || rr.Protocol != "tcp" || rr.Log || rr.Audit ||
		rr.ActionLimit != "" || rr.RejectType != "" {
		return plan.Observed{}, false
	}
	var v plan.Verdict
	switch {
	case rr.Action == "accept" && policy != DenyPolicy:
		v = plan.Allow
	case rr.Action == "reject" && policy != AllowPolicy:
		v = plan.Deny
	default:
		return plan.Observed{}, false
	}
	port, err := strconv.Atoi(rr.Port)
	if err != nil {
		return plan.Observed{}, false
	}
	fam := plan.Family(rr.Family)
	src := plan.World(fam)
	if rr.Source != "" {
		src = rr.Source
	}
	r := plan.Rule{Family: fam, Protocol: "tcp", Port: port, Source: src, Verdict: v}
	if text, err := renderRule(r); err != nil || text != rr.Text {
		return plan.Observed{}, false
	}
	return plan.Observed{
		ID: ownedID(policy, rr.Text), Family: fam, Protocol: "tcp", PortFrom: port, PortTo: port,
		Source: src, Verdict: v, Owned: true, Origin: "policy " + policy,
	}, true
}

func ownedID(policy, text string) string { return policy + "|" + text }

// splitOwnedID is the inverse of ownedID.
func splitOwnedID(id string) (policy, text string, err error) {
	policy, text, ok := strings.Cut(id, "|")
	if !ok || !strings.HasPrefix(policy, ownedPrefix) || !strings.HasPrefix(text, "rule ") {
		return "", "", fmt.Errorf("%q is not the id of a rule in a mailfw policy", id)
	}
	return policy, text, nil
}

// intPriority reads a policy's priority.
func intPriority(b *block) int {
	p, err := strconv.Atoi(b.one("priority"))
	if err != nil {
		return -1
	}
	return p
}

// canonicalSources canonicalises a zone's address sources; ipset and MAC
// sources are returned apart.
func canonicalSources(vals []string) (cidrs, other []string) {
	for _, s := range vals {
		if c, _, err := plan.CanonicalSource(s); err == nil && !plan.IsCloudRef(s) {
			cidrs = append(cidrs, c)
		} else {
			other = append(other, s)
		}
	}
	return cidrs, other
}

// translate builds the State from what Read gathered.
func (rd *reading) translate() *plan.State {
	st := &plan.State{Kind: "firewalld " + rd.version, IPv6: true}
	sc := &plan.Scope{ID: ScopeID,
		DenyOrder: order(DenyPriority, 3), AllowOrder: order(AllowPriority, 5)}
	rd.zoneRules(st, sc)
	rd.policyRules(st, sc)
	sort.SliceStable(sc.Rules, func(i, j int) bool { return sc.Rules[i].Order < sc.Rules[j].Order })
	st.Scopes = []plan.Scope{*sc}
	st.Findings = append(st.Findings, rd.missingPolicyFindings()...)
	st.Findings = append(st.Findings, rd.runtimePermanentFindings()...)
	st.Extra = rd.extra()
	return st
}

// chosenZone is the zone whose interface traffic counts.
func (rd *reading) chosenZone() string {
	if rd.zone != "" {
		return rd.zone
	}
	return rd.defaultZone
}

// zoneRules adds the rules of the zones traffic can reach. A source-bound
// zone's rules hold for its sources only; an interface zone's rules hold
// unconditionally only for the chosen zone and only for sources that no
// source-bound zone takes first.
func (rd *reading) zoneRules(st *plan.State, sc *plan.Scope) {
	names := sortedKeys(rd.runtime.Zones)
	var shadow []string
	for _, name := range names {
		srcs, _ := canonicalSources(rd.runtime.Zones[name].Fields["sources"])
		shadow = append(shadow, srcs...)
	}
	chosen := rd.chosenZone()
	for _, name := range names {
		b := rd.runtime.Zones[name]
		srcs, other := canonicalSources(b.Fields["sources"])
		if len(srcs) > 0 || len(other) > 0 {
			h := holder{kind: "zone", name: name, sources: append([]string{}, srcs...)}
			obs := rd.blockObserved(h, b)
			if len(other) > 0 {
				h.sources, h.conditional = nil, true
				obs = append(obs, rd.blockObserved(h, b)...)
			}
			sc.Rules = append(sc.Rules, obs...)
			if !grantsMail(obs) {
				st.Findings = append(st.Findings, sourceZoneFinding(name, b))
			}
		}
		if len(b.Fields["interfaces"]) > 0 || name == chosen || name == rd.defaultZone {
			h := holder{kind: "zone", name: name, conditional: name != chosen,
				shadowSources: shadow}
			sc.Rules = append(sc.Rules, rd.blockObserved(h, b)...)
		}
	}
}

// policyRules adds the rules of the policies towards the host: mailfw's
// own, and other tools' as fixed rules.
func (rd *reading) policyRules(st *plan.State, sc *plan.Scope) {
	chosen := rd.chosenZone()
	for _, name := range sortedKeys(rd.runtime.Policies) {
		b := rd.runtime.Policies[name]
		if !slices.Contains(b.Fields["egress-zones"], "HOST") {
			continue
		}
		ingress := b.Fields["ingress-zones"]
		h := holder{kind: "policy", name: name, priority: intPriority(b),
			conditional: !slices.Contains(ingress, "ANY") && !slices.Contains(ingress, chosen)}
		if !strings.HasPrefix(name, ownedPrefix) {
			sc.Rules = append(sc.Rules, rd.blockObserved(h, b)...)
			continue
		}
		rules, findings := rd.ownedPolicy(h, b)
		sc.Rules = append(sc.Rules, rules...)
		st.Findings = append(st.Findings, findings...)
		switch name {
		case AllowPolicy:
			sc.AllowOrder = order(h.priority, 5)
		case DenyPolicy:
			sc.DenyOrder = order(h.priority, 3)
		}
	}
}

// ownedPolicy translates one mailfw policy: rules of mailfw's shape are
// owned; anything else stays untouched and is a finding.
func (rd *reading) ownedPolicy(h holder, b *block) ([]plan.Observed, []plan.Finding) {
	var rules []plan.Observed
	var findings []plan.Finding
	var permRules []string
	if pb := rd.permanent.Policies[h.name]; pb != nil {
		permRules = pb.Fields["rich rules"]
	}
	for _, text := range permRules {
		rr, err := parseRichRule(text)
		if err != nil || contains(b.Fields["rich rules"], text) {
			continue
		}
		if o, ok := ownedRule(h.name, rr); ok {
			rules = append(rules, halfApplied(o, "permanent"))
		}
	}
	for _, text := range b.Fields["rich rules"] {
		rr, err := parseRichRule(text)
		if err != nil {
			findings = append(findings, foreignFinding(h.name, text, "cannot be parsed: "+err.Error(), nil))
			continue
		}
		if o, ok := ownedRule(h.name, rr); ok {
			o.Order = order(h.priority, innerOrder(0, o.Verdict))
			o.Conditional = h.conditional
			if !contains(permRules, text) {
				o = halfApplied(o, "runtime")
			}
			rules = append(rules, o)
			continue
		}
		obs := rd.richObserved(h, rr)
		rules = append(rules, obs...)
		var first *plan.Observed
		if len(obs) > 0 {
			first = &obs[0]
		}
		findings = append(findings, foreignFinding(h.name, text, "is not a rule mailfw writes", first))
	}
	other := *b
	other.Fields = map[string][]string{}
	for _, k := range []string{"services", "ports", "protocols"} {
		for _, v := range b.Fields[k] {
			other.Fields[k] = append(other.Fields[k], v)
			findings = append(findings, foreignFinding(h.name, strings.TrimSuffix(k, "s")+" "+v,
				"is not a rule mailfw writes", nil))
		}
	}
	rules = append(rules, rd.blockObserved(h, &other)...)
	findings = append(findings, policyShapeFindings(h.name, b)...)
	return rules, findings
}

func foreignFinding(policy, what, why string, o *plan.Observed) plan.Finding {
	return plan.Finding{ID: FindingForeignRule, Severity: plan.Medium, Scope: ScopeID, Rule: o,
		Message: fmt.Sprintf("policy %s holds %q, which %s; mailfw leaves it alone: "+
			"remove it by hand or move it to a policy of your own", policy, what, why)}
}

// policyShapeFindings checks the settings of mailfw-allow and mailfw-deny.
func policyShapeFindings(name string, b *block) []plan.Finding {
	want := map[string]int{AllowPolicy: AllowPriority, DenyPolicy: DenyPriority}
	prio, ours := want[name]
	if !ours {
		return nil
	}
	var bad []string
	if got := intPriority(b); got != prio {
		bad = append(bad, fmt.Sprintf("priority %d instead of %d", got, prio))
	}
	if t := b.one("target"); t != "CONTINUE" {
		bad = append(bad, "target "+t+" instead of CONTINUE")
	}
	if in := strings.Join(b.Fields["ingress-zones"], " "); in != "ANY" {
		bad = append(bad, fmt.Sprintf("ingress zones %q instead of ANY", in))
	}
	if out := strings.Join(b.Fields["egress-zones"], " "); out != "HOST" {
		bad = append(bad, fmt.Sprintf("egress zones %q instead of HOST", out))
	}
	if len(bad) == 0 {
		return nil
	}
	return []plan.Finding{{ID: FindingPolicyAltered, Severity: plan.High, Scope: ScopeID,
		Message: fmt.Sprintf("policy %s was changed by hand: %s; the orders mailfw relies on "+
			"may not hold; fix it with firewall-cmd --permanent --policy=%s", name,
			strings.Join(bad, ", "), name)}}
}

func grantsMail(obs []plan.Observed) bool {
	for _, o := range obs {
		for _, p := range mailPorts {
			if o.Verdict == plan.Allow && !o.Conditional &&
				(o.Protocol == "tcp" || o.Protocol == "all") && o.PortFrom <= p && p <= o.PortTo {
				return true
			}
		}
	}
	return false
}

func sourceZoneFinding(name string, b *block) plan.Finding {
	sev := plan.Low
	if t := b.one("target"); t == "DROP" || t == "REJECT" || t == "%%REJECT%%" {
		sev = plan.Medium
	}
	return plan.Finding{ID: FindingSourceZone, Severity: sev, Scope: ScopeID,
		Message: fmt.Sprintf("zone %s is bound to %s and grants none of ports 25, 465, 587 "+
			"(target %s): mail from those sources does not reach the services of the "+
			"interface zone and relies on mailfw's own policies",
			name, strings.Join(b.Fields["sources"], " "), b.one("target"))}
}

func (rd *reading) missingPolicyFindings() []plan.Finding {
	var missing []string
	for _, p := range []string{DenyPolicy, AllowPolicy} {
		if rd.runtime.Policies[p] == nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return []plan.Finding{{ID: FindingReloadNeeded, Severity: plan.Info, Scope: ScopeID,
		Message: fmt.Sprintf("policies %s are not in force yet: the next apply creates them "+
			"and reloads firewalld once, carrying runtime-only rules across the reload",
			strings.Join(missing, ", "))}}
}

// extra is what else makes a saved plan stale: bindings and priorities.
func (rd *reading) extra() string {
	var b strings.Builder
	fmt.Fprintf(&b, "default=%s zone=%s", rd.defaultZone, rd.zone)
	for _, it := range rd.runtime.items() {
		if it.Key == "interfaces" || it.Key == "sources" {
			fmt.Fprintf(&b, "; %s", it)
		}
	}
	for _, name := range sortedKeys(rd.runtime.Policies) {
		p := rd.runtime.Policies[name]
		fmt.Fprintf(&b, "; policy %s priority %s", name, p.one("priority"))
	}
	return b.String()
}

// runtimePermanentFindings reports, per zone or policy, the entries that
// concern the mail ports and are only in one of the two configurations.
func (rd *reading) runtimePermanentFindings() []plan.Finding {
	rtItems := rd.relevant(rd.runtime.items())
	permItems := rd.relevant(rd.permanent.items())
	type side struct {
		rtOnly, permOnly []string
		onlyBans         bool
	}
	diffs := map[string]*side{}
	note := func(it item, rtOnly bool) {
		k := it.Kind + " " + it.Holder
		if diffs[k] == nil {
			diffs[k] = &side{onlyBans: true}
		}
		if !rtOnly || !isBan(it) {
			diffs[k].onlyBans = false
		}
		v := strings.TrimSuffix(it.Key, "s") + " " + it.Value
		if rtOnly {
			diffs[k].rtOnly = append(diffs[k].rtOnly, v)
		} else {
			diffs[k].permOnly = append(diffs[k].permOnly, v)
		}
	}
	for _, it := range minus(rtItems, permItems) {
		note(it, true)
	}
	for _, it := range minus(permItems, rtItems) {
		note(it, false)
	}
	var out []plan.Finding
	for _, k := range sortedKeys(diffs) {
		d := diffs[k]
		var parts []string
		if len(d.rtOnly) > 0 {
			parts = append(parts, "runtime only: "+cut(d.rtOnly))
		}
		if len(d.permOnly) > 0 {
			parts = append(parts, "permanent only: "+cut(d.permOnly))
		}
		// Runtime-only bans are how fail2ban works; worth knowing, not
		// worth alarm.
		sev := plan.Medium
		if d.onlyBans {
			sev = plan.Info
		}
		out = append(out, plan.Finding{ID: FindingRuntimePermanent, Severity: sev,
			Scope: ScopeID, Message: fmt.Sprintf("%s differs between runtime and permanent "+
				"configuration for mail ports (%s); a reload or restart changes what is open",
				k, strings.Join(parts, "; "))})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func cut(vals []string) string {
	if len(vals) > 10 {
		return strings.Join(vals[:10], ", ") + fmt.Sprintf(" and %d more", len(vals)-10)
	}
	return strings.Join(vals, ", ")
}

// relevant keeps the items of zones and host policies that concern the
// mail ports; interface bindings are left out, since network managers keep
// them in the runtime only.
func (rd *reading) relevant(items []item) []item {
	var out []item
	for _, it := range items {
		if it.Key == "interfaces" || (it.Kind == "zone" && !rd.zoneInUse(it.Holder)) ||
			!rd.mailItem(it) {
			continue
		}
		out = append(out, it)
	}
	return out
}

func (rd *reading) mailItem(it item) bool {
	var gs []grant
	switch it.Key {
	case "sources":
		return true
	case "services":
		gs = specGrants(rd.services[it.Value])
	case "ports":
		if ps, err := parsePortSpec(it.Value); err == nil {
			gs = specGrants([]portSpec{ps})
		}
	case "protocols":
		gs = []grant{{it.Value, 1, 65535}}
	case "rich rules":
		rr, err := parseRichRule(it.Value)
		if err != nil {
			return true
		}
		h := holder{kind: it.Kind, name: it.Holder}
		for _, o := range rd.richObserved(h, rr) {
			gs = append(gs, grant{o.Protocol, o.PortFrom, o.PortTo})
		}
	}
	for _, g := range gs {
		for _, p := range mailPorts {
			if (g.proto == "tcp" || g.proto == "all") && g.from <= p && p <= g.to {
				return true
			}
		}
	}
	return false
}

// zoneInUse reports whether traffic can reach a zone: it is bound to an
// interface or a source in either configuration, or it is the default or
// the chosen zone.
func (rd *reading) zoneInUse(name string) bool {
	if name == rd.defaultZone || name == rd.zone {
		return true
	}
	for _, v := range []view{rd.runtime, rd.permanent} {
		if z := v.Zones[name]; z != nil && (len(z.Fields["interfaces"]) > 0 || len(z.Fields["sources"]) > 0) {
			return true
		}
	}
	return false
}

// isBan reports whether it is a rich rule that rejects or drops.
func isBan(it item) bool {
	if it.Key != "rich rules" {
		return false
	}
	rr, err := parseRichRule(it.Value)
	return err == nil && (rr.Action == "reject" || rr.Action == "drop")
}

// halfApplied marks an owned rule found in one configuration only (an
// apply that failed half-way, a hand edit). It is reported conditional, so
// the plan removes it and, when the policy still wants it, adds it afresh;
// Apply turns that pair into one add to both configurations.
func halfApplied(o plan.Observed, only string) plan.Observed {
	o.Conditional = true
	o.Origin += " (" + only + " only)"
	return o
}
