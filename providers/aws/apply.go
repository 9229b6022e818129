package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mailfw/mailfw/plan"
)

// convergeRounds bounds how often one group's additions or removals are
// re-read and re-issued after another client changed the group under us.
const convergeRounds = 3

// QuotaError refuses an apply that would pass a group's rule quota. Nothing
// was changed when it is returned.
type QuotaError struct {
	Scope  string
	Family plan.Family
	Used   int // rules counted now, per the last read
	Adding int // what the additions count
	Quota  int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%s: adding %d %s rules to the %d in use would pass the quota of %d; "+
		"nothing was changed: ask AWS for a higher quota and set quota: in the target, or narrow the policy",
		e.Scope, e.Adding, e.Family, e.Used, e.Quota)
}

// ApplyError is an apply that stopped part-way. Done lists what was made,
// NotDone what was not; rerunning plan and apply finishes the work.
type ApplyError struct {
	Done    []plan.Change
	NotDone []plan.Change
	// Unverified are the changes of NotDone whose write failed with its
	// outcome unknown and whose group could not be read back: they may
	// have been made. A new plan shows where they stand.
	Unverified []plan.Change
	Errs       []error // one per group that failed; a *ChangedError among them
}

func (e *ApplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apply stopped part-way: %d of %d changes made", len(e.Done), len(e.Done)+len(e.NotDone))
	if len(e.Done) > 0 {
		b.WriteString("; made:")
		for _, c := range e.Done {
			fmt.Fprintf(&b, " [%s %s on %s]", c.Action, c.Rule, c.Scope)
		}
	}
	if len(e.NotDone) > 0 {
		b.WriteString("; not made:")
		for _, c := range e.NotDone {
			fmt.Fprintf(&b, " [%s %s on %s]", c.Action, c.Rule, c.Scope)
		}
	}
	if len(e.Unverified) > 0 {
		b.WriteString("; outcome unknown (the group could not be read back):")
		for _, c := range e.Unverified {
			fmt.Fprintf(&b, " [%s %s on %s]", c.Action, c.Rule, c.Scope)
		}
	}
	for _, err := range e.Errs {
		fmt.Fprintf(&b, "; %v", err)
	}
	return b.String()
}

func (e *ApplyError) Unwrap() []error { return e.Errs }

// work is the changes for one group.
type work struct {
	g                      *group
	adds, updates, removes []plan.Change // as planned
	todo                   []plan.Change // the next phase's changes that passed the re-check
	done                   []plan.Change
	changed                []ChangedRule // updates and removals left alone: their rules changed
	unverified             []plan.Change
	err                    error
}

var scopePattern = regexp.MustCompile(`^(sg-[0-9a-f]+) \(([a-z0-9-]+)\)$`)

// Apply makes the changes: for every group one AuthorizeSecurityGroupIngress
// with all its additions (tagged and described at creation), then one
// UpdateSecurityGroupRuleDescriptionsIngress, then one
// RevokeSecurityGroupIngress, both naming rules by properties. All
// additions, in every group, land before any update or removal, and a group
// whose additions failed has nothing removed. Before the first write, the
// additions are checked against each group's quota and the whole apply is
// refused if one would pass it. Before the updates and again before the
// removals, the groups concerned are re-read (batched as in Read), and a
// rule is written to only while it is still the rule the plan saw (see
// [ChangedError]).
func (b *Backend) Apply(ctx context.Context, changes []plan.Change) ([]plan.Change, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	works, err := b.plan(ctx, changes)
	if err != nil {
		return nil, err
	}
	if err := b.checkQuota(ctx, works); err != nil {
		return nil, err
	}
	b.phase(ctx, works, func(w *work) []plan.Change { return w.adds }, b.authorize)
	b.recheck(ctx, works, func(w *work) []plan.Change { return w.updates })
	b.phase(ctx, works, func(w *work) []plan.Change { return w.todo }, b.updateDescriptions)
	b.recheck(ctx, works, func(w *work) []plan.Change { return w.removes })
	b.phase(ctx, works, func(w *work) []plan.Change { return w.todo }, b.revoke)
	b.mu.Lock()
	for _, w := range works {
		delete(b.last, w.g.scope()) // stale now
	}
	b.mu.Unlock()
	return b.result(works)
}

// plan sorts the changes by group and makes sure each group's rules are
// known, reading the groups the last Read did not see.
func (b *Backend) plan(ctx context.Context, changes []plan.Change) ([]*work, error) {
	b.mu.Lock()
	last := maps.Clone(b.last)
	b.mu.Unlock()
	byScope := map[string]*work{}
	var order []string
	var unread []*group
	for _, c := range changes {
		w := byScope[c.Scope]
		if w == nil {
			m := scopePattern.FindStringSubmatch(c.Scope)
			if m == nil || b.clients[m[2]] == nil {
				return nil, fmt.Errorf("change %s: scope %q is not a security group of this target",
					c.Rule, c.Scope)
			}
			g := last[c.Scope]
			if g == nil {
				g = &group{region: m[2], id: m[1]}
				unread = append(unread, g)
			}
			w = &work{g: g}
			byScope[c.Scope] = w
			order = append(order, c.Scope)
		}
		if err := checkChange(c); err != nil {
			return nil, err
		}
		switch c.Action {
		case plan.Add:
			w.adds = append(w.adds, c)
		case plan.Update:
			w.updates = append(w.updates, c)
		case plan.Remove:
			w.removes = append(w.removes, c)
		}
	}
	if len(unread) > 0 {
		if err := b.readRules(ctx, unread); err != nil {
			return nil, err
		}
	}
	works := make([]*work, len(order))
	for i, s := range order {
		works[i] = byScope[s]
	}
	return works, nil
}

func checkChange(c plan.Change) error {
	switch c.Action {
	case plan.Add:
		if c.Rule.Verdict != plan.Allow || c.Rule.Protocol != "tcp" || c.Rule.Limit != nil {
			return fmt.Errorf("change %s: security groups hold only plain TCP allow rules", c.Rule)
		}
		if c.Rule.Port < 1 || c.Rule.Port > 65535 {
			return fmt.Errorf("change %s: port out of range", c.Rule)
		}
		_, err := parseSource(c.Rule.Source)
		return err
	case plan.Update, plan.Remove:
		if !strings.HasPrefix(c.ID, "sgr-") {
			return fmt.Errorf("change %s %s: %q is not a security group rule id", c.Action, c.Rule, c.ID)
		}
		return nil
	}
	return fmt.Errorf("change %s: unknown action %q", c.Rule, c.Action)
}

// checkQuota refuses the apply when a group's rules in use plus its
// additions would pass the quota in a family. Removals come after the
// additions, so they do not make room for them.
func (b *Backend) checkQuota(ctx context.Context, works []*work) error {
	var groups []*group
	extra := map[string][]string{}
	for _, w := range works {
		groups = append(groups, w.g)
		for _, c := range w.adds {
			if s, _ := parseSource(c.Rule.Source); s.prefixList != "" {
				extra[w.g.region] = append(extra[w.g.region], s.prefixList)
			}
		}
	}
	pls, err := b.prefixLists(ctx, groups, extra)
	if err != nil {
		return err
	}
	for region, ids := range extra {
		for _, id := range ids {
			if _, ok := pls[region][id]; !ok {
				return fmt.Errorf("prefix list %s not found in %s; nothing was changed", id, region)
			}
		}
	}
	var errs []error
	for _, w := range works {
		used := usage(w.g.rules, pls[w.g.region])
		adding := map[plan.Family]int{}
		for _, c := range w.adds {
			s, _ := parseSource(c.Rule.Source)
			v4, v6 := weight(s, pls[w.g.region])
			adding[plan.IPv4] += v4
			adding[plan.IPv6] += v6
		}
		for _, f := range []plan.Family{plan.IPv4, plan.IPv6} {
			if adding[f] > 0 && used[f]+adding[f] > b.quota {
				errs = append(errs, &QuotaError{Scope: w.g.scope(), Family: f, Used: used[f],
					Adding: adding[f], Quota: b.quota})
			}
		}
	}
	return errors.Join(errs...)
}

// phase runs step on every group that has changes of this kind and whose
// earlier steps succeeded, groups in parallel.
func (b *Backend) phase(ctx context.Context, works []*work, pick func(*work) []plan.Change,
	step func(context.Context, *work, []plan.Change) ([]plan.Change, error)) {
	var todo []*work
	for _, w := range works {
		if w.err == nil && len(pick(w)) > 0 {
			todo = append(todo, w)
		}
	}
	errs := each(ctx, b.parallel, len(todo), fatal, func(ctx context.Context, i int) error {
		w := todo[i]
		done, err := step(ctx, w, pick(w))
		w.done = append(w.done, done...)
		return err
	})
	for i, err := range errs {
		if err != nil {
			todo[i].err = err
		}
	}
}

// result assembles Apply's return values, group by group in the order the
// groups first appear in the changes.
func (b *Backend) result(works []*work) ([]plan.Change, error) {
	var done, notDone, unverified []plan.Change
	var errs []error
	for _, w := range works {
		unverified = append(unverified, w.unverified...)
		if len(w.changed) > 0 {
			errs = append(errs, &ChangedError{Scope: w.g.scope(), Rules: w.changed})
		}
		made := map[string]bool{}
		for _, c := range w.done {
			made[changeKey(c)] = true
		}
		done = append(done, w.done...)
		for _, c := range slices.Concat(w.adds, w.updates, w.removes) {
			if !made[changeKey(c)] {
				notDone = append(notDone, c)
			}
		}
		if w.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.g.scope(), w.err))
		}
	}
	if len(errs) == 0 && len(notDone) == 0 {
		return done, nil
	}
	if auth := firstError(errs); fatal(auth) && len(done) == 0 {
		return nil, auth
	}
	return done, &ApplyError{Done: done, NotDone: notDone, Unverified: unverified, Errs: errs}
}

func changeKey(c plan.Change) string {
	return string(c.Action) + "|" + c.Scope + "|" + c.ID + "|" + c.Rule.Key()
}

// authorize adds the rules in one call. When another client added one of
// them first (InvalidPermission.Duplicate), it re-reads the group and adds
// only what is still missing. When the call's outcome is unknown, the group
// read back says which additions are there.
func (b *Backend) authorize(ctx context.Context, w *work, adds []plan.Change) ([]plan.Change, error) {
	var done []plan.Change
	for round := 0; ; round++ {
		perms, err := permissions(adds)
		if err != nil {
			return done, err
		}
		err = b.call(ctx, w.g.region, "AuthorizeSecurityGroupIngress", func(ctx context.Context) error {
			_, err := b.clients[w.g.region].AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId:       aws.String(w.g.id),
				IpPermissions: perms,
				TagSpecifications: []types.TagSpecification{{
					ResourceType: types.ResourceTypeSecurityGroupRule,
					Tags:         []types.Tag{{Key: aws.String(tagKey), Value: aws.String(tagValue)}},
				}},
			})
			return err
		})
		if err == nil {
			return append(done, adds...), nil
		}
		if outcomeUnknown(err) {
			made, err := b.settle(ctx, w, adds, err, func(c plan.Change) bool { return present(c, w.g.rules) })
			return append(done, made...), err
		}
		if errorCode(err) != "InvalidPermission.Duplicate" || round == convergeRounds {
			return done, err
		}
		b.log.Info("a rule was added by someone else first; re-reading the group",
			"sg_id", w.g.id, "region", w.g.region)
		if err := b.readRules(ctx, []*group{w.g}); err != nil {
			return done, err
		}
		var missing []plan.Change
		for _, c := range adds {
			if present(c, w.g.rules) {
				done = append(done, c)
			} else {
				missing = append(missing, c)
			}
		}
		if adds = missing; len(adds) == 0 {
			return done, nil
		}
	}
}

// updateDescriptions rewrites descriptions in place, naming the rules by
// their properties (protocol, port, source) rather than by id, so that a
// rule another client edited after the re-check is not given mailfw's mark.
// Rules that vanished or changed meanwhile are left out and reported as not
// made.
func (b *Backend) updateDescriptions(ctx context.Context, w *work, ups []plan.Change) ([]plan.Change, error) {
	for round := 0; ; round++ {
		perms, err := permissions(ups)
		if err != nil {
			return nil, err
		}
		err = b.call(ctx, w.g.region, "UpdateSecurityGroupRuleDescriptionsIngress", func(ctx context.Context) error {
			_, err := b.clients[w.g.region].UpdateSecurityGroupRuleDescriptionsIngress(ctx,
				&ec2.UpdateSecurityGroupRuleDescriptionsIngressInput{GroupId: aws.String(w.g.id), IpPermissions: perms})
			return err
		})
		if err == nil {
			return ups, nil
		}
		if outcomeUnknown(err) {
			return b.settle(ctx, w, ups, err, func(c plan.Change) bool {
				r, ok := ruleByID(w.g.rules, c.ID)
				return ok && aws.ToString(r.Description) == markedDescription(c.Rule.Description)
			})
		}
		if !ruleGone(err) || round == convergeRounds {
			return nil, err
		}
		if err := b.readRules(ctx, []*group{w.g}); err != nil {
			return nil, err
		}
		if ups = b.sortOut(w, ups); len(ups) == 0 {
			return nil, nil
		}
	}
}

// revoke removes rules by their properties (protocol, port, source), not
// by id: a rule another client edited in place keeps its id but not its
// properties, so it cannot be removed in its edited form, even when the edit
// lands after the re-check. When EC2 finds no rule for a permission
// (InvalidPermission.NotFound, or an unknown permission in a default VPC),
// the group is re-read: rules someone else removed count as removed, rules
// changed meanwhile are left alone, and the rest is re-issued.
func (b *Backend) revoke(ctx context.Context, w *work, rms []plan.Change) ([]plan.Change, error) {
	var done []plan.Change
	for round := 0; ; round++ {
		perms, err := revokePermissions(rms)
		if err != nil {
			return done, err
		}
		var out *ec2.RevokeSecurityGroupIngressOutput
		err = b.call(ctx, w.g.region, "RevokeSecurityGroupIngress", func(ctx context.Context) error {
			var err error
			out, err = b.clients[w.g.region].RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
				GroupId: aws.String(w.g.id), IpPermissions: perms})
			return err
		})
		if err == nil && len(out.UnknownIpPermissions) == 0 {
			b.checkRevoked(w, rms, out.RevokedSecurityGroupRules)
			return append(done, rms...), nil
		}
		if outcomeUnknown(err) {
			made, err := b.settle(ctx, w, rms, err, func(c plan.Change) bool {
				_, still := ruleByID(w.g.rules, c.ID)
				return !still
			})
			return append(done, made...), err
		}
		if err != nil && (!ruleGone(err) || round == convergeRounds) {
			return done, err
		}
		b.log.Info("a rule to remove was not found as planned; re-reading the group",
			"sg_id", w.g.id, "region", w.g.region)
		if err := b.readRules(ctx, []*group{w.g}); err != nil {
			return done, err
		}
		if err == nil {
			// A default VPC revoked the rules it found and listed the rest.
			b.checkRevoked(w, rms, out.RevokedSecurityGroupRules)
			var rest []plan.Change
			for _, c := range rms {
				if _, still := ruleByID(w.g.rules, c.ID); still {
					rest = append(rest, c)
				} else {
					done = append(done, c)
				}
			}
			rms = rest
		}
		if rms = b.sortOut(w, rms); len(rms) == 0 {
			return done, nil
		}
		if round == convergeRounds {
			return done, fmt.Errorf("removing %d rule(s): EC2 found no rule with their properties "+
				"although the group still holds them", len(rms))
		}
	}
}

func ruleGone(err error) bool {
	switch errorCode(err) {
	case "InvalidSecurityGroupRuleId.NotFound", "InvalidPermission.NotFound":
		return true
	}
	return false
}
