package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/mailfw/mailfw/plan"
)

// ChangedError says that planned updates or removals were not made because
// their rules are no longer the rules the plan saw: another client edited
// them in place (ModifySecurityGroupRules keeps the rule id) or changed
// their mark. A new plan decides about them again.
type ChangedError struct {
	Scope string
	Rules []ChangedRule
}

// ChangedRule is one rule a [ChangedError] names.
type ChangedRule struct {
	Change plan.Change // as planned
	Now    string      // the rule as EC2 holds it now
}

func (e *ChangedError) Error() string {
	parts := make([]string, len(e.Rules))
	for i, r := range e.Rules {
		parts[i] = fmt.Sprintf("%s (planned: %s %s; now: %s)", r.Change.ID, r.Change.Action, r.Change.Rule, r.Now)
	}
	return fmt.Sprintf("%s: the rule changed since the plan, not touched: %s", e.Scope, strings.Join(parts, ", "))
}

// recheck re-reads the groups that have changes of one kind (updates or
// removals) to make, batched as Read reads them, and leaves in each work's
// todo only the changes whose rule is still the rule the plan saw. A group
// that cannot be re-read gets none of those changes.
func (b *Backend) recheck(ctx context.Context, works []*work, pick func(*work) []plan.Change) {
	var todo []*work
	var groups []*group
	for _, w := range works {
		w.todo = nil
		if w.err == nil && len(pick(w)) > 0 {
			todo = append(todo, w)
			groups = append(groups, w.g)
		}
	}
	if len(todo) == 0 {
		return
	}
	if err := b.readRules(ctx, groups); err != nil {
		for _, w := range todo {
			w.err = fmt.Errorf("re-reading the group before writing by rule id: %w", err)
		}
		return
	}
	for _, w := range todo {
		w.todo = b.sortOut(w, pick(w))
	}
}

// sortOut checks planned updates or removals against the group as just
// read. It returns those whose rule is unchanged; a removal whose rule is
// gone counts as done, an update whose rule is gone as not made (the next
// plan adds the rule), and a changed rule goes to w.changed.
func (b *Backend) sortOut(w *work, cs []plan.Change) []plan.Change {
	var keep []plan.Change
	for _, c := range cs {
		r, ok := ruleByID(w.g.rules, c.ID)
		switch {
		case !ok && c.Action == plan.Remove:
			b.log.Info("a rule to remove was removed by someone else first",
				"sg_id", w.g.id, "region", w.g.region, "rule_id", c.ID)
			w.done = append(w.done, c)
		case !ok:
			b.log.Warn("a rule to update was removed by someone else; the next plan will add it",
				"sg_id", w.g.id, "region", w.g.region, "rule_id", c.ID)
		case !asPlanned(c, r):
			now := describeRule(r)
			b.log.Warn("a rule was changed by someone else since the plan; leaving it alone",
				"sg_id", w.g.id, "region", w.g.region, "rule_id", c.ID, "action", c.Action, "now", now)
			w.changed = append(w.changed, ChangedRule{Change: c, Now: now})
		default:
			keep = append(keep, c)
		}
	}
	return keep
}

// asPlanned reports whether rule r is still what the plan saw for change c:
// the same protocol, single port and source, and the same mark (the plan
// updates only marked rules, and removes unmarked ones only for exclusive
// ownership).
func asPlanned(c plan.Change, r types.SecurityGroupRule) bool {
	o, ok := observe(r)
	if !ok {
		return false
	}
	got, ok := o.AsRule()
	if !ok || got.Key() != c.Rule.Key() {
		return false
	}
	wantOwned := c.Action == plan.Update || c.Reason != plan.ReasonExclusive
	return o.Owned == wantOwned
}

// checkRevoked logs a rule EC2 removed for a planned removal under another
// id than the plan's: the planned rule was replaced, after the re-check, by
// one with the same protocol, port and source, which grants what the plan
// meant to remove.
func (b *Backend) checkRevoked(w *work, rms []plan.Change, revoked []types.RevokedSecurityGroupRule) {
	planned := map[string]bool{}
	for _, c := range rms {
		planned[c.ID] = true
	}
	for _, r := range revoked {
		if id := aws.ToString(r.SecurityGroupRuleId); !planned[id] {
			b.log.Warn("removed a rule that replaced a planned one with the same protocol, port and source",
				"sg_id", w.g.id, "region", w.g.region, "rule_id", id, "description", aws.ToString(r.Description))
		}
	}
}

func ruleByID(rules []types.SecurityGroupRule, id string) (types.SecurityGroupRule, bool) {
	for _, r := range rules {
		if aws.ToString(r.SecurityGroupRuleId) == id {
			return r, true
		}
	}
	return types.SecurityGroupRule{}, false
}

// describeRule renders a rule as EC2 holds it, for messages.
func describeRule(r types.SecurityGroupRule) string {
	proto := aws.ToString(r.IpProtocol)
	ports := fmt.Sprintf(" %d-%d", aws.ToInt32(r.FromPort), aws.ToInt32(r.ToPort))
	if proto == "-1" {
		proto, ports = "all", ""
	}
	src := aws.ToString(r.CidrIpv4) + aws.ToString(r.CidrIpv6) + aws.ToString(r.PrefixListId)
	if ref := r.ReferencedGroupInfo; ref != nil {
		src = groupRef(aws.ToString(ref.GroupId), aws.ToString(ref.UserId), aws.ToString(r.GroupOwnerId))
	}
	s := fmt.Sprintf("%s%s from %s %q", proto, ports, src, aws.ToString(r.Description))
	if o, ok := observe(r); !ok || !o.Owned {
		s += " unmarked"
	}
	return s
}

// outcomeUnknown reports whether a failed write may have taken effect: it
// got no clean refusal from EC2 (a transport error, a reply that does not
// parse, a server error after the retries, a call cut off by
// cancellation). An EC2 error with a 4xx status, or a throttle, changed
// nothing: EC2 applies a call whole or not at all.
func outcomeUnknown(err error) bool {
	if err == nil || fatal(err) {
		return false
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return true
	}
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
		return false
	}
	var status interface{ HTTPStatusCode() int }
	return errors.As(err, &status) && status.HTTPStatusCode() >= 500
}

// settle handles a write whose outcome is unknown: it re-reads the group
// and returns the changes made says are in effect. When all are, the write
// took effect and its error is dropped; when the group cannot be read, the
// changes are recorded as unverified.
func (b *Backend) settle(ctx context.Context, w *work, cs []plan.Change, callErr error,
	made func(plan.Change) bool) ([]plan.Change, error) {
	b.log.Warn("a write failed with its outcome unknown; re-reading the group",
		"sg_id", w.g.id, "region", w.g.region, "error", callErr)
	if err := b.readRules(ctx, []*group{w.g}); err != nil {
		w.unverified = append(w.unverified, cs...)
		return nil, fmt.Errorf("%w; its outcome is unknown, and re-reading the group failed: %w", callErr, err)
	}
	var done []plan.Change
	for _, c := range cs {
		if made(c) {
			done = append(done, c)
		}
	}
	if len(done) == len(cs) {
		b.log.Warn("the write took effect although its reply was lost or broken",
			"sg_id", w.g.id, "region", w.g.region, "changes", len(cs))
		return done, nil
	}
	return done, fmt.Errorf("%w (the group read back holds %d of the %d changes)", callErr, len(done), len(cs))
}
