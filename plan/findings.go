package plan

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// coversPort reports whether o matches TCP traffic to port p.
func (o Observed) coversPort(p int) bool {
	return (o.Protocol == "tcp" || o.Protocol == "all") && o.PortFrom <= p && p <= o.PortTo
}

func isWorld(source string) bool { return source == "0.0.0.0/0" || source == "::/0" }

// findExposure reports unmarked allows that open mail ports wider than the
// policy does, broad rules that reach mail ports, and unmarked allows that
// an earlier deny makes dead.
func (d *scopeDiff) findExposure() {
	for i := range d.scope.Rules {
		o := &d.scope.Rules[i]
		if o.Owned || o.Verdict != Allow || d.removed[i] {
			continue
		}
		var exposed, beyond []int
		for _, p := range d.ports {
			if !o.coversPort(p) {
				continue
			}
			exposed = append(exposed, p)
			if !d.policyAllows(o, p) {
				beyond = append(beyond, p)
			}
		}
		if len(exposed) == 0 {
			continue
		}
		if by := d.shadowOf(o.Order, d.catchObserved(o)); by != nil {
			d.add(Finding{ID: FindingDeadAllow, Severity: Low, Rule: o,
				Message: fmt.Sprintf("%s has no effect: %s comes first", o, by)})
			continue
		}
		d.reportExposure(o, exposed, beyond)
	}
}

func (d *scopeDiff) reportExposure(o *Observed, exposed, beyond []int) {
	cond := ""
	if o.Conditional {
		cond = " (under conditions mailfw does not model)"
	}
	switch {
	case o.Broad():
		sev := Low
		if len(beyond) > 0 {
			sev = Medium
			if isWorld(o.Source) {
				sev = High
			}
		}
		msg := fmt.Sprintf("%s is a broad rule that also opens mail port(s) %s%s", o, portList(exposed), cond)
		if len(beyond) > 0 {
			msg += fmt.Sprintf("; port(s) %s are open wider than the policy allows", portList(beyond))
		}
		d.add(Finding{ID: FindingBroadRule, Severity: sev, Rule: o,
			Message: msg + "; narrow it to the ports it is for"})
	case len(beyond) > 0:
		sev := Medium
		if isWorld(o.Source) {
			sev = High
		}
		d.add(Finding{ID: FindingOpenBeyondPolicy, Severity: sev, Rule: o,
			Message: fmt.Sprintf("%s opens port %s wider than the policy allows%s; %s",
				o, portList(beyond), cond, d.exposureHint(o))})
	}
}

// exposureHint says what the user can do about an unmarked rule that opens
// too much.
func (d *scopeDiff) exposureHint(o *Observed) string {
	switch {
	case o.Fixed:
		return "mailfw never removes it on this target: remove it by hand, or add its sources to the policy"
	case o.Conditional:
		return "remove it by hand, or add its sources to the policy"
	case d.opts.Ownership == Exclusive:
		return "remove it by hand, or add its sources to the policy"
	}
	return "remove it, add its sources to the policy, or set ownership: exclusive to let mailfw remove it"
}

// policyAllows reports whether some desired allow for port p covers all of
// o's sources.
func (d *scopeDiff) policyAllows(o *Observed, p int) bool {
	for _, w := range d.desired {
		if w.Verdict == Allow && w.Port == p && (w.Family == o.Family || w.Family == FamilyAny) &&
			d.contains(w.Source, o.Source) {
			return true
		}
	}
	return false
}

func portList(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

func (d *scopeDiff) add(f Finding) {
	f.Scope = d.scope.ID
	d.findings = append(d.findings, f)
}

// findDeadDenies reports unmarked denies on mail ports that an earlier
// allow lets every packet past: a ban that no longer bans. After an apply
// the allows mailfw adds count too, at Scope.AllowOrder.
func (d *scopeDiff) findDeadDenies() {
	type allow struct {
		c     catch
		order int
		what  string
	}
	var allows []allow
	for i := range d.scope.Rules {
		o := &d.scope.Rules[i]
		if o.Verdict == Allow && !o.Conditional && !d.removed[i] {
			allows = append(allows, allow{d.catchObserved(o), o.Order, o.String()})
		}
	}
	for _, c := range d.changes {
		if c.Action == Add && c.Rule.Verdict == Allow {
			allows = append(allows, allow{d.catchRule(c.Rule), d.scope.AllowOrder, "mailfw's planned " + c.Rule.String()})
		}
	}
	for i := range d.scope.Rules {
		o := &d.scope.Rules[i]
		// Only bans count: a catch-all after the allows is where it belongs.
		if o.Verdict != Deny || o.Owned || o.Conditional || d.removed[i] || isWorld(o.Source) {
			continue
		}
		op, ok := d.prefix(o.Source)
		for _, p := range d.ports {
			if !o.coversPort(p) {
				continue
			}
			for _, a := range allows {
				if a.order >= o.Order || a.c.from > p || a.c.to < p || (a.c.protocol != "all" && a.c.protocol != "tcp") ||
					(a.c.family != o.Family && a.c.family != FamilyAny) {
					continue
				}
				if a.c.source != o.Source && (!ok || !a.c.prefix.IsValid() || a.c.prefix.Bits() > op.Bits() ||
					a.c.prefix.Addr().Is4() != op.Addr().Is4() || !a.c.prefix.Contains(op.Addr())) {
					continue
				}
				d.add(Finding{ID: FindingDeadDeny, Severity: Medium, Rule: o,
					Message: fmt.Sprintf("%s does not block port %d: %s comes first and accepts it; "+
						"move the deny before it", o, p, a.what)})
				goto next
			}
		}
	next:
	}
}

// policyConflicts reports allows of the policy that one of its own denies
// covers: the deny wins, so the allow does nothing.
func policyConflicts(desired []Rule) []Finding {
	var fs []Finding
	for _, dn := range desired {
		if dn.Verdict != Deny {
			continue
		}
		for _, al := range desired {
			if al.Verdict == Allow && al.Port == dn.Port && al.Family == dn.Family && SourceContains(dn.Source, al.Source) {
				fs = append(fs, Finding{ID: FindingPolicyConflict, Severity: Medium, Line: al.Line,
					Message: fmt.Sprintf("the policy allows port %d from %s (line %d) but also denies it from %s (line %d); the deny wins",
						al.Port, al.Source, al.Line, dn.Source, dn.Line)})
			}
		}
	}
	return fs
}

// findDuplicates reports rules that appear more than once.
func (d *scopeDiff) findDuplicates() {
	seen := map[string]int{}
	for i, o := range d.scope.Rules {
		if d.removed[i] || o.Conditional {
			continue
		}
		k := fmt.Sprintf("%s|%s|%d|%d|%s|%s|%v", o.Family, o.Protocol, o.PortFrom, o.PortTo, o.Source, o.Verdict, o.Limit)
		if first, dup := seen[k]; dup {
			d.add(Finding{ID: FindingDuplicateRule, Severity: Low, Rule: &d.scope.Rules[i],
				Message: fmt.Sprintf("%s repeats %s; one of them can go", o, d.scope.Rules[first])})
			continue
		}
		seen[k] = i
	}
}

// findFamilyMismatch reports a desired port that, once the plan is
// applied, is open to every IPv4 address but not to every IPv6 one, or the
// other way round.
func (d *scopeDiff) findFamilyMismatch() {
	if !d.ipv6 {
		return
	}
	for _, p := range d.ports {
		v4, v6 := d.worldOpen(IPv4, p), d.worldOpen(IPv6, p)
		if v4 == v6 || d.oneFamilyOnPurpose(p) {
			continue
		}
		open, shut := "IPv4", "IPv6"
		if v6 {
			open, shut = shut, open
		}
		how := "use from: [anywhere] for both families, or anywhere-ipv4 / anywhere-ipv6 to say one on purpose"
		if !d.policyOpensToWorld(p) {
			how = "an unmarked rule opens it to the world in one family only"
		}
		d.add(Finding{ID: FindingFamilyMismatch, Severity: Medium, Line: d.lineFor(p),
			Message: fmt.Sprintf("port %d will be open to all of %s but not to all of %s; %s", p, open, shut, how)})
	}
}

// oneFamilyOnPurpose reports whether the policy opens port p to the world
// with anywhere-ipv4 or anywhere-ipv6, naming the family it means.
func (d *scopeDiff) oneFamilyOnPurpose(p int) bool {
	for _, w := range d.desired {
		if w.Verdict == Allow && w.Port == p && w.OneFamily {
			return true
		}
	}
	return false
}

func (d *scopeDiff) policyOpensToWorld(p int) bool {
	for _, w := range d.desired {
		if w.Verdict == Allow && w.Port == p && isWorld(w.Source) {
			return true
		}
	}
	return false
}

func (d *scopeDiff) lineFor(p int) int {
	for _, w := range d.desired {
		if w.Port == p && w.Verdict == Allow {
			return w.Line
		}
	}
	return 0
}

func (d *scopeDiff) worldOpen(f Family, p int) bool {
	for _, w := range d.desired {
		if w.Verdict == Allow && w.Family == f && w.Port == p && isWorld(w.Source) {
			return true
		}
	}
	for i, o := range d.scope.Rules {
		if !o.Owned && !o.Conditional && !d.removed[i] && o.Verdict == Allow && o.Family == f &&
			o.coversPort(p) && isWorld(o.Source) {
			return true
		}
	}
	return false
}

// checkQuota refuses a plan that would pass the scope's quota and warns
// when it comes near. Adds are applied before removals, so the count that
// matters is the peak: what is used now plus every add.
func (d *scopeDiff) checkQuota() error {
	q := d.scope.Quota
	if q <= 0 {
		return nil
	}
	peak := map[Family]int{IPv4: d.scope.QuotaUsed[IPv4], IPv6: d.scope.QuotaUsed[IPv6]}
	for _, c := range d.changes {
		if c.Action != Add {
			continue
		}
		switch {
		case c.Rule.Family == FamilyAny:
			peak[IPv4]++
			peak[IPv6]++
		default:
			peak[c.Rule.Family]++
		}
	}
	counts := []struct {
		what string
		n    int
	}{{"IPv4", peak[IPv4]}, {"IPv6", peak[IPv6]}}
	if d.scope.QuotaShared {
		counts = counts[:1]
		counts[0] = struct {
			what string
			n    int
		}{"", peak[IPv4] + peak[IPv6]}
	}
	var errs []error
	for _, c := range counts {
		rules := strings.TrimSpace(c.what + " rules")
		switch {
		case c.n > q:
			errs = append(errs, fmt.Errorf("%s: while it runs the plan needs %d %s, and the quota is %d (additions come before removals); "+
				"nothing was changed: ask the provider for a higher quota and set quota: in the target, or narrow the policy",
				d.scope.ID, c.n, rules, q))
		case c.n*10 >= q*8:
			d.add(Finding{ID: FindingQuotaNear, Severity: Medium,
				Message: fmt.Sprintf("up to %d of %d %s will be in use", c.n, q, rules)})
		}
	}
	return errors.Join(errs...)
}

var actionRank = map[Action]int{Add: 0, Update: 1, Remove: 2}

// sortChanges puts changes in apply order: every add before any update and
// every update before any removal, so no desired port closes while a plan
// runs; within adds, denies first, so no allow opens before the carve-out
// that narrows it.
func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if actionRank[a.Action] != actionRank[b.Action] {
			return actionRank[a.Action] < actionRank[b.Action]
		}
		if a.Scope != b.Scope {
			return a.Scope < b.Scope
		}
		if a.Rule.Verdict != b.Rule.Verdict {
			return a.Rule.Verdict == Deny
		}
		if a.Rule.Family != b.Rule.Family {
			return a.Rule.Family < b.Rule.Family
		}
		if a.Rule.Port != b.Rule.Port {
			return a.Rule.Port < b.Rule.Port
		}
		return a.Rule.Source < b.Rule.Source
	})
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() > b.Severity.Rank()
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Scope != b.Scope {
			return a.Scope < b.Scope
		}
		return a.Message < b.Message
	})
}

func joinErrors(errs []error) error {
	errs = slices.DeleteFunc(errs, func(e error) bool { return e == nil })
	return errors.Join(errs...)
}
