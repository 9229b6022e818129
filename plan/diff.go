package plan

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
)

// Ownership says which rules mailfw may remove.
type Ownership string

// The ownership modes.
const (
	Managed   Ownership = "managed"
	Exclusive Ownership = "exclusive"
)

// DiffOptions tunes [Diff].
type DiffOptions struct {
	Ownership Ownership
	// MailPorts are the ports findings and exclusive ownership look at; nil
	// means 25, 465, 587 and every port the desired rules name.
	MailPorts []int
}

// TargetPlan is the plan for one target.
type TargetPlan struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Kind        string    `json:"kind,omitempty"`
	StateDigest string    `json:"state_digest"`
	Changes     []Change  `json:"changes"`
	Findings    []Finding `json:"findings"`
	// Satisfied lists desired rules that unmarked rules already grant.
	Satisfied []Satisfied `json:"satisfied,omitempty"`
}

// PlanTarget reads b's state and diffs it against what p asks of t.
func PlanTarget(ctx context.Context, p *Policy, t Target, b Backend) (TargetPlan, error) {
	caps := b.Capabilities()
	desired, err := p.Desired(t, caps)
	if err != nil {
		return TargetPlan{}, fmt.Errorf("the policy asks what this target cannot do:\n%w", err)
	}
	st, err := b.Read(ctx)
	if err != nil {
		return TargetPlan{}, err
	}
	tp, err := Diff(desired, st, caps, DiffOptions{Ownership: p.Ownership})
	if err != nil {
		return TargetPlan{}, err
	}
	tp.Name, tp.Type = t.Name, t.Type
	return tp, nil
}

// Satisfied records a desired rule that an unmarked rule already grants, so
// the plan adds nothing for it.
type Satisfied struct {
	Rule  Rule     `json:"rule"`
	By    Observed `json:"by"`
	Scope string   `json:"scope,omitempty"`
}

// Diff compares the desired rules with the state a backend read and returns
// the changes that make the state match, in apply order, and the findings.
// It returns an error only when the plan could not be carried out at all (a
// quota it would pass, an allow the backend says must not be shadowed).
func Diff(desired []Rule, st *State, caps Capabilities, opts DiffOptions) (TargetPlan, error) {
	tp := TargetPlan{Kind: st.Kind, StateDigest: st.Digest(), Changes: []Change{}, Findings: []Finding{}}
	desired, tp.Findings = fitToTarget(desired, st, caps)
	if opts.Ownership == "" {
		opts.Ownership = Managed
	}
	ports := mailPorts(desired, opts.MailPorts)
	tp.Findings = append(tp.Findings, policyConflicts(desired)...)
	var errs []error
	for i := range st.Scopes {
		d := &scopeDiff{scope: &st.Scopes[i], desired: desired, opts: opts, ports: ports, caps: caps,
			ipv6: st.IPv6 && caps.IPv6}
		if err := d.run(); err != nil {
			errs = append(errs, err)
		}
		tp.Changes = append(tp.Changes, d.changes...)
		tp.Findings = append(tp.Findings, d.findings...)
		tp.Satisfied = append(tp.Satisfied, d.satisfied...)
	}
	tp.Findings = append(tp.Findings, st.Findings...)
	tp.Findings = append(tp.Findings, notListening(desired, st.Listening)...)
	sortChanges(tp.Changes)
	sortFindings(tp.Findings)
	if len(errs) > 0 {
		return tp, joinErrors(errs)
	}
	return tp, nil
}

// notListening reports desired open ports that no local process listens
// on: the rule would open a closed port, often a sign of a typo or of a mail
// server that is down.
func notListening(desired []Rule, listening []int) []Finding {
	if listening == nil {
		return nil
	}
	var fs []Finding
	seen := map[int]bool{}
	for _, r := range desired {
		if r.Verdict != Allow || seen[r.Port] || slices.Contains(listening, r.Port) {
			continue
		}
		seen[r.Port] = true
		fs = append(fs, Finding{ID: FindingNotListening, Severity: Info, Line: r.Line,
			Message: fmt.Sprintf("no local process listens on TCP port %d, which the policy opens", r.Port)})
	}
	return fs
}

// fitToTarget drops what the target cannot hold and says so.
func fitToTarget(desired []Rule, st *State, caps Capabilities) ([]Rule, []Finding) {
	var out []Rule
	var fs []Finding
	noV6, limitLines, descLines := 0, map[int]bool{}, map[int]bool{}
	for _, r := range desired {
		if r.AsWritten != "" && !descLines[r.Line] {
			descLines[r.Line] = true
			msg := fmt.Sprintf("this target stores the description as %q", r.Description)
			if r.Description == "" {
				msg = "this target cannot store descriptions; only the mark is written"
			}
			fs = append(fs, Finding{ID: FindingDescriptionFitted, Severity: Info, Line: r.Line, Message: msg})
		}
		if r.Family == IPv6 && (!st.IPv6 || !caps.IPv6) {
			noV6++
			continue
		}
		if r.Limit != nil && !caps.Limit {
			if !limitLines[r.Line] {
				limitLines[r.Line] = true
				fs = append(fs, Finding{ID: FindingLimitUnenforced, Severity: Low, Line: r.Line,
					Message: fmt.Sprintf("this target cannot enforce connections_per_source (%d) for port %d; the rules are written without the limit",
						r.Limit.ConnectionsPerSource, r.Port)})
			}
			r.Limit = nil
		}
		out = append(out, r)
	}
	if noV6 > 0 {
		fs = append(fs, Finding{ID: FindingNoIPv6, Severity: Medium,
			Message: fmt.Sprintf("this target does not filter IPv6, so %d IPv6 rule(s) of the policy are left out; "+
				"IPv6 traffic follows whatever the host does by default", noV6)})
	}
	return out, fs
}

func mailPorts(desired []Rule, given []int) []int {
	set := map[int]bool{}
	for _, p := range given {
		set[p] = true
	}
	if given == nil {
		for _, p := range MailPorts {
			set[p] = true
		}
		for _, r := range desired {
			set[r.Port] = true
		}
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

type scopeDiff struct {
	scope   *Scope
	desired []Rule
	opts    DiffOptions
	ports   []int
	caps    Capabilities
	ipv6    bool

	changes   []Change
	findings  []Finding
	satisfied []Satisfied
	// removed marks the indexes of scope.Rules the plan removes; used
	// marks the unmarked rules that satisfy a desired rule.
	removed map[int]bool
	used    map[int]bool
	// denies indexes the unconditional denies of scope.Rules by Order.
	denies []denyEntry
	// prefixes caches parsed sources; a diff compares the same few
	// thousand strings millions of times.
	prefixes map[string]netip.Prefix
}

// contains is SourceContains with parsed prefixes cached.
func (d *scopeDiff) contains(outer, inner string) bool {
	if outer == inner {
		return true
	}
	o, ok1 := d.prefix(outer)
	i, ok2 := d.prefix(inner)
	if !ok1 || !ok2 || o.Addr().Is4() != i.Addr().Is4() {
		return false
	}
	return o.Bits() <= i.Bits() && o.Contains(i.Addr())
}

func (d *scopeDiff) prefix(s string) (netip.Prefix, bool) {
	if p, ok := d.prefixes[s]; ok {
		return p, p.IsValid()
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		p = netip.Prefix{}
	}
	if d.prefixes == nil {
		d.prefixes = map[string]netip.Prefix{}
	}
	d.prefixes[s] = p
	return p, p.IsValid()
}

// covers is Observed.Covers with the prefix cache.
func (d *scopeDiff) covers(o *Observed, r Rule) bool { return o.coversWith(r, d.contains) }

func (d *scopeDiff) run() error {
	d.removed, d.used = map[int]bool{}, map[int]bool{}
	d.indexDenies()
	rules := d.scope.Rules
	ownedByKey := map[string][]int{}
	for i, o := range rules {
		if !o.Owned {
			continue
		}
		r, ok := o.AsRule()
		switch {
		case !ok:
			// A marked range or all-protocol rule: mailfw never writes
			// one, so someone edited it by hand. Removing it could close
			// ports outside the policy (SSH in a 20-600 range); say so and
			// leave it.
			d.add(Finding{ID: FindingMarkedBroad, Severity: High, Rule: &d.scope.Rules[i],
				Message: fmt.Sprintf("%s carries mailfw's mark but is a range or all-protocol rule mailfw never writes; "+
					"it is left alone: narrow it by hand, or remove the mark", o)})
		case o.Conditional:
			// A marked rule the backend says is not in force as written
			// (its jump is misplaced, say): take it out and add it afresh.
			d.remove(i, ReasonNotDesired)
		default:
			ownedByKey[r.Key()] = append(ownedByKey[r.Key()], i)
		}
	}
	var errs []error
	for _, want := range d.desired {
		if idx := ownedByKey[want.Key()]; len(idx) > 0 {
			keep := idx[0]
			ownedByKey[want.Key()] = idx[1:]
			d.used[keep] = true
			if err := d.checkShadow(want, rules[keep].Order); err != nil {
				errs = append(errs, err)
			}
			if rules[keep].Description != want.Description {
				d.changes = append(d.changes, Change{Action: Update, Rule: want, Reason: ReasonDescription,
					Scope: d.scope.ID, ID: rules[keep].ID, OldDescription: rules[keep].Description})
			}
			continue
		}
		if i, ok := d.grantedByUnmarked(want); ok {
			d.used[i] = true
			d.satisfied = append(d.satisfied, Satisfied{Rule: want, By: rules[i], Scope: d.scope.ID})
			continue
		}
		if err := d.checkShadow(want, d.scope.AllowOrder); err != nil {
			errs = append(errs, err)
		}
		if err := d.checkSameMatch(want); err != nil {
			errs = append(errs, err)
		}
		d.changes = append(d.changes, Change{Action: Add, Rule: want, Reason: ReasonMissing, Scope: d.scope.ID})
	}
	for _, idx := range ownedByKey {
		for _, i := range idx {
			reason := ReasonNotDesired
			if d.isDesired(rules[i]) {
				reason = ReasonDuplicate
			}
			d.remove(i, reason)
		}
	}
	if d.opts.Ownership == Exclusive {
		d.removeUnmarked()
	}
	d.findExposure()
	d.findDeadDenies()
	d.findDuplicates()
	d.findFamilyMismatch()
	if err := d.checkQuota(); err != nil {
		errs = append(errs, err)
	}
	return joinErrors(errs)
}

// remove plans the removal of scope.Rules[i], which must be a single-port
// rule: a Change can describe no other.
func (d *scopeDiff) remove(i int, reason Reason) {
	o := d.scope.Rules[i]
	r, ok := o.AsRule()
	if !ok {
		panic("plan: removal of a broad rule " + o.String())
	}
	d.removed[i] = true
	d.changes = append(d.changes, Change{Action: Remove, Rule: r, Reason: reason, Scope: d.scope.ID, ID: o.ID})
}

func (d *scopeDiff) isDesired(o Observed) bool {
	r, ok := o.AsRule()
	if !ok {
		return false
	}
	for _, w := range d.desired {
		if w.Key() == r.Key() {
			return true
		}
	}
	return false
}

// grantedByUnmarked finds an unmarked rule that already does what want
// asks: for an allow, one that covers it and is not itself shadowed; for a
// deny, an equal one.
func (d *scopeDiff) grantedByUnmarked(want Rule) (int, bool) {
	for i, o := range d.scope.Rules {
		if o.Owned || o.Conditional || o.Verdict != want.Verdict || d.removed[i] {
			continue
		}
		if want.Verdict == Deny {
			if r, ok := o.AsRule(); ok && r.Key() == want.Key() {
				return i, true
			}
			continue
		}
		if want.Limit != nil && o.Limit == nil && !o.Broad() && o.Source == want.Source {
			// An equal rule without the limit: mailfw's limited rule would
			// change nothing while it stands; keep it and say so.
			d.findings = append(d.findings, Finding{ID: FindingLimitBypassed, Severity: Medium,
				Rule: &d.scope.Rules[i], Scope: d.scope.ID, Line: want.Line,
				Message: fmt.Sprintf("an unmarked rule grants port %d from %s without the policy's limit of %d connections per source",
					want.Port, want.Source, want.Limit.ConnectionsPerSource)})
		} else if want.Limit != nil && o.Limit == nil {
			continue
		}
		if d.opts.Ownership == Exclusive && d.removableUnmarked(o) && !d.policyAllows(&o, o.PortFrom) {
			// Exclusive ownership takes this rule out; it cannot satisfy.
			continue
		}
		if d.covers(&o, want) && d.shadowOf(o.Order, d.catchRule(want)) == nil {
			return i, true
		}
	}
	return 0, false
}

// catch describes the packets a shadowing deny must catch in full.
type catch struct {
	family    Family
	protocol  string
	from, to  int
	source    string
	prefix    netip.Prefix // parsed source; invalid for a cloud reference
	skipOwned bool
}

func (d *scopeDiff) catchRule(r Rule) catch {
	p, _ := d.prefix(r.Source)
	return catch{family: r.Family, protocol: r.Protocol, from: r.Port, to: r.Port, source: r.Source, prefix: p}
}

func (d *scopeDiff) catchObserved(o *Observed) catch {
	p, _ := d.prefix(o.Source)
	return catch{family: o.Family, protocol: o.Protocol, from: o.PortFrom, to: o.PortTo, source: o.Source, prefix: p}
}

// shadowOf returns the first deny that a packet meets before order and that
// catches every packet c describes, or nil.
func (d *scopeDiff) shadowOf(order int, c catch) *Observed {
	for _, de := range d.denies {
		o := &d.scope.Rules[de.index]
		if o.Order >= order {
			break
		}
		if d.removed[de.index] || (c.skipOwned && o.Owned) ||
			(o.Family != c.family && o.Family != FamilyAny && c.family != FamilyAny) ||
			(o.Protocol != "all" && o.Protocol != c.protocol) || o.PortFrom > c.from || o.PortTo < c.to {
			continue
		}
		switch {
		case o.Source == c.source:
		case !de.prefix.IsValid() || !c.prefix.IsValid():
			continue
		case de.prefix.Bits() > c.prefix.Bits() || de.prefix.Addr().Is4() != c.prefix.Addr().Is4() ||
			!de.prefix.Contains(c.prefix.Addr()):
			continue
		}
		return o
	}
	return nil
}

// denyEntry is an unconditional deny with its source parsed.
type denyEntry struct {
	index  int
	prefix netip.Prefix
}

// indexDenies lists the unconditional denies of the scope in evaluation
// order, once, for shadowOf.
func (d *scopeDiff) indexDenies() {
	for i := range d.scope.Rules {
		if o := &d.scope.Rules[i]; o.Verdict == Deny && !o.Conditional {
			p, _ := d.prefix(o.Source)
			d.denies = append(d.denies, denyEntry{i, p})
		}
	}
	sort.SliceStable(d.denies, func(a, b int) bool {
		return d.scope.Rules[d.denies[a].index].Order < d.scope.Rules[d.denies[b].index].Order
	})
}

// checkShadow reports a desired allow that an earlier unmarked deny makes
// dead; where the backend says so, that is an error.
func (d *scopeDiff) checkShadow(want Rule, order int) error {
	if want.Verdict != Allow {
		return nil
	}
	c := d.catchRule(want)
	c.skipOwned = true
	by := d.shadowOf(order, c)
	if by == nil {
		return nil
	}
	if d.caps.ShadowedAllowIsError {
		return fmt.Errorf("policy line %d: the allow for port %d from %s in %s would be dead: %s is evaluated first; "+
			"give the target a better (lower) priority or remove that rule", want.Line, want.Port, want.Source, d.scope.ID, by)
	}
	d.findings = append(d.findings, Finding{ID: FindingDeadAllow, Severity: High, Rule: by,
		Scope: d.scope.ID, Line: want.Line,
		Message: fmt.Sprintf("the policy's allow for port %d from %s would have no effect: %s comes first and drops it",
			want.Port, want.Source, by)})
	return nil
}

// checkSameMatch refuses an add that would overwrite an unmarked rule with
// the same match, on backends that hold one rule per match.
func (d *scopeDiff) checkSameMatch(want Rule) error {
	if !d.caps.OneRulePerMatch {
		return nil
	}
	for i := range d.scope.Rules {
		o := &d.scope.Rules[i]
		if !o.Owned && !d.removed[i] && o.Family == want.Family && o.Protocol == want.Protocol &&
			o.PortFrom == want.Port && o.PortTo == want.Port && o.Source == want.Source {
			return fmt.Errorf("policy line %d: adding %s would overwrite the unmarked rule %s, "+
				"since this firewall keeps one rule per match; change or remove that rule by hand, or drop the entry",
				want.Line, want, o)
		}
	}
	return nil
}

// removeUnmarked takes out, under exclusive ownership, the unmarked
// single-port allows on mail ports that no desired rule uses.
func (d *scopeDiff) removeUnmarked() {
	for i, o := range d.scope.Rules {
		if d.removableUnmarked(o) && !d.used[i] && !d.removed[i] {
			d.remove(i, ReasonExclusive)
		}
	}
}

// removableUnmarked reports whether exclusive ownership may remove o: an
// unmarked, unconditional single-port TCP allow on a mail port.
func (d *scopeDiff) removableUnmarked(o Observed) bool {
	return !o.Owned && !o.Fixed && !o.Conditional && !o.Broad() && o.Verdict == Allow &&
		o.Protocol == "tcp" && slices.Contains(d.ports, o.PortFrom)
}
