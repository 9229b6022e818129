package alibaba

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/mailfw/mailfw/plan"
)

// batchSize is the most Permissions.N or SecurityGroupRuleId.N in one call.
const batchSize = 100

// Apply implements plan.Backend. Per group it authorizes the additions (100
// a call), modifies descriptions, revokes removals by rule id (100 a call),
// then reads the group back and returns only the changes seen in effect. It
// checks every group's quota before writing anything. After a group fails,
// groups not yet begun are left alone; the error is an *ApplyError.
func (b *Backend) Apply(ctx context.Context, changes []plan.Change) ([]plan.Change, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	ids, byGroup, err := b.groupChanges(changes)
	if err != nil {
		return nil, err
	}
	infos, err := b.describeByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("apply refused, nothing was changed: %w", err)
	}
	if err := b.checkQuota(ids, infos, byGroup); err != nil {
		return nil, err
	}
	b.logger.Info("quota check passed", "groups", len(ids), "changes", len(changes))

	results := make([]groupResult, len(ids))
	started := make([]bool, len(ids))
	var mu sync.Mutex
	failed, finished := false, 0
	sem := make(chan struct{}, b.parallel)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		mu.Lock()
		stop := failed
		mu.Unlock()
		if stop || ctx.Err() != nil {
			<-sem
			break
		}
		started[i] = true
		wg.Go(func() {
			defer func() { <-sem }()
			r := b.applyGroup(ctx, infos[id], byGroup[id])
			mu.Lock()
			results[i] = r
			failed = failed || r.fail != nil
			finished++
			n := finished
			mu.Unlock()
			b.progressStep("applied", n, len(ids))
		})
	}
	wg.Wait()
	return collect(ids, byGroup, results, started)
}

type groupResult struct {
	done []plan.Change
	fail *ScopeFailure
}

func collect(ids []string, byGroup map[string][]plan.Change, results []groupResult,
	started []bool) ([]plan.Change, error) {
	ae := &ApplyError{}
	for i, id := range ids {
		if !started[i] {
			ae.NotStarted = append(ae.NotStarted, byGroup[id]...)
			continue
		}
		ae.Done = append(ae.Done, results[i].done...)
		if f := results[i].fail; f != nil {
			ae.Failed = append(ae.Failed, *f)
		}
	}
	if len(ae.Failed) == 0 && len(ae.NotStarted) == 0 {
		return ae.Done, nil
	}
	return ae.Done, ae
}

// groupChanges checks every change and sorts them by group, keeping plan
// order within a group.
func (b *Backend) groupChanges(changes []plan.Change) ([]string, map[string][]plan.Change, error) {
	byGroup := map[string][]plan.Change{}
	var ids []string
	var errs []error
	for _, c := range changes {
		id, err := b.parseScope(c.Scope)
		if err == nil {
			err = checkChange(c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", c.Action, c.Rule, err))
			continue
		}
		if _, ok := byGroup[id]; !ok {
			ids = append(ids, id)
		}
		byGroup[id] = append(byGroup[id], c)
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("apply refused, nothing was changed: %w", errors.Join(errs...))
	}
	slices.Sort(ids)
	return ids, byGroup, nil
}

func (b *Backend) parseScope(s string) (string, error) {
	id, rest, ok := strings.Cut(s, " (")
	region, ok2 := strings.CutSuffix(rest, ")")
	if !ok || !ok2 || !strings.HasPrefix(id, "sg-") {
		return "", fmt.Errorf("scope %q is not an Alibaba security group scope", s)
	}
	if region != b.region {
		return "", fmt.Errorf("scope %q is in another region than this target's %s", s, b.region)
	}
	return id, nil
}

func checkChange(c plan.Change) error {
	switch c.Action {
	case plan.Add:
		r := c.Rule
		if r.Limit != nil {
			return fmt.Errorf("a security group cannot enforce a connection limit")
		}
		if r.Protocol != "tcp" && r.Protocol != "udp" {
			return fmt.Errorf("protocol %q is not one mailfw writes", r.Protocol)
		}
		if r.Port < 1 || r.Port > 65535 || r.Source == "" {
			return fmt.Errorf("the rule has no port or source")
		}
		if r.Verdict != plan.Allow && r.Verdict != plan.Deny {
			return fmt.Errorf("verdict %q is neither allow nor deny", r.Verdict)
		}
		_, err := Description(r.Description)
		return err
	case plan.Update:
		if !strings.HasPrefix(c.ID, "sgr-") {
			return fmt.Errorf("rule id %q is not a security group rule id", c.ID)
		}
		_, err := Description(c.Rule.Description)
		return err
	case plan.Remove:
		if !strings.HasPrefix(c.ID, "sgr-") {
			return fmt.Errorf("rule id %q is not a security group rule id", c.ID)
		}
		return nil
	}
	return fmt.Errorf("unknown action %q", c.Action)
}

// checkQuota refuses the whole apply when a group would pass its quota at
// its fullest, after the additions and before the removals.
func (b *Backend) checkQuota(ids []string, infos map[string]groupInfo, byGroup map[string][]plan.Change) error {
	var over []QuotaExceeded
	for _, id := range ids {
		adds := 0
		for _, c := range byGroup[id] {
			if c.Action == plan.Add {
				adds++
			}
		}
		if used := infos[id].RuleCount; used+adds > b.quota {
			over = append(over, QuotaExceeded{Scope: infos[id].scope(b.region), Used: used,
				Add: adds, Quota: b.quota})
		}
	}
	if len(over) > 0 {
		return &QuotaError{Groups: over}
	}
	return nil
}

// applyGroup makes one group's changes and reads the group back.
func (b *Backend) applyGroup(ctx context.Context, g groupInfo, cs []plan.Change) groupResult {
	var adds, updates, removes []plan.Change
	for _, c := range cs {
		switch c.Action {
		case plan.Add:
			adds = append(adds, c)
		case plan.Update:
			updates = append(updates, c)
		case plan.Remove:
			removes = append(removes, c)
		}
	}
	gone := map[string]bool{}
	acked, callErr := b.writeGroup(ctx, g, adds, updates, removes, gone)

	perms, rerr := b.readRules(ctx, g.ID)
	if rerr != nil {
		ordered := slices.Concat(adds, updates, removes)
		return b.unverified(g, ordered[:acked], ordered[acked:], callErr, rerr)
	}
	done, notDone := b.verify(g, cs, perms, gone)
	if len(notDone) == 0 {
		if callErr != nil {
			// A reply lost or unreadable after ECS made the change: the
			// group reads as planned, so it converged.
			b.logger.Warn("a call failed but the group reads back as planned", "sg_id", g.ID, "error", callErr)
		}
		return groupResult{done: done}
	}
	if callErr == nil {
		callErr = fmt.Errorf("%d change(s) not in effect when the group was read back", len(notDone))
	}
	return groupResult{done: done, fail: &ScopeFailure{Scope: g.scope(b.region), Err: callErr, NotDone: notDone}}
}

// writeGroup makes the calls in plan order and stops at the first failure.
// It returns how many changes, counted in that order, ECS acknowledged.
func (b *Backend) writeGroup(ctx context.Context, g groupInfo, adds, updates, removes []plan.Change,
	gone map[string]bool) (int, error) {
	acked := 0
	for batch := range slices.Chunk(adds, batchSize) {
		if err := b.authorize(ctx, g, batch); err != nil {
			return acked, fmt.Errorf("adding %d rule(s): %w", len(batch), err)
		}
		acked += len(batch)
	}
	for _, u := range updates {
		if err := b.modifyDescription(ctx, g, u); err != nil {
			return acked, fmt.Errorf("updating the description of %s: %w", u.ID, err)
		}
		acked++
	}
	for batch := range slices.Chunk(removes, batchSize) {
		if err := b.revoke(ctx, g, batch, gone); err != nil {
			return acked, fmt.Errorf("removing %d rule(s): %w", len(batch), err)
		}
		acked += len(batch)
	}
	return acked, nil
}

func (b *Backend) authorize(ctx context.Context, g groupInfo, batch []plan.Change) error {
	perms := make([]ecs.AuthorizeSecurityGroupPermissions, len(batch))
	for i, c := range batch {
		perms[i] = b.permission(c.Rule, g)
	}
	return b.call(ctx, "AuthorizeSecurityGroup", func(c *ecs.Client) error {
		r := ecs.CreateAuthorizeSecurityGroupRequest()
		r.RegionId, r.SecurityGroupId = b.region, g.ID
		r.Permissions = &perms
		_, err := c.AuthorizeSecurityGroup(r)
		return err
	})
}

// permission is the ECS form of a rule mailfw writes.
func (b *Backend) permission(r plan.Rule, g groupInfo) ecs.AuthorizeSecurityGroupPermissions {
	p := ecs.AuthorizeSecurityGroupPermissions{
		IpProtocol:  strings.ToUpper(r.Protocol),
		PortRange:   fmt.Sprintf("%d/%d", r.Port, r.Port),
		Policy:      "accept",
		Priority:    strconv.Itoa(b.priority),
		Description: mark(r.Description),
		NicType:     "intranet",
	}
	if r.Verdict == plan.Deny {
		p.Policy = "drop"
	}
	switch {
	case strings.HasPrefix(r.Source, "sg-"):
		p.SourceGroupId = r.Source
	case strings.HasPrefix(r.Source, "pl-"):
		p.SourcePrefixListId = r.Source
	case r.Family == plan.IPv6:
		p.Ipv6SourceCidrIp = r.Source
	default:
		p.SourceCidrIp = r.Source
	}
	if g.VpcID == "" && p.SourceGroupId == "" {
		// A classic-network group sees traffic from the internet only
		// through internet rules.
		p.NicType = "internet"
	}
	return p
}

func (b *Backend) modifyDescription(ctx context.Context, g groupInfo, u plan.Change) error {
	return b.call(ctx, "ModifySecurityGroupRule", func(c *ecs.Client) error {
		r := ecs.CreateModifySecurityGroupRuleRequest()
		r.RegionId, r.SecurityGroupId, r.SecurityGroupRuleId = b.region, g.ID, u.ID
		r.Description = mark(u.Rule.Description)
		_, err := c.ModifySecurityGroupRule(r)
		return err
	})
}

// revoke removes rules by id. ECS refuses the whole call when one id no
// longer exists; then the rules still there are revoked and the vanished
// ones noted in gone.
func (b *Backend) revoke(ctx context.Context, g groupInfo, batch []plan.Change, gone map[string]bool) error {
	ids := make([]string, len(batch))
	for i, c := range batch {
		ids[i] = c.ID
	}
	err := b.revokeIDs(ctx, g, ids)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "InvalidParam.SecurityGroupRuleId" {
		return err
	}
	perms, rerr := b.readRules(ctx, g.ID)
	if rerr != nil {
		return err
	}
	present := map[string]bool{}
	for _, p := range perms {
		present[p.SecurityGroupRuleId] = true
	}
	var rest []string
	for _, id := range ids {
		if present[id] {
			rest = append(rest, id)
		} else {
			gone[id] = true
			b.logger.Info("rule already removed", "sg_id", g.ID, "rule_id", id)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return b.revokeIDs(ctx, g, rest)
}

func (b *Backend) revokeIDs(ctx context.Context, g groupInfo, ids []string) error {
	return b.call(ctx, "RevokeSecurityGroup", func(c *ecs.Client) error {
		r := ecs.CreateRevokeSecurityGroupRequest()
		r.RegionId, r.SecurityGroupId = b.region, g.ID
		r.SecurityGroupRuleId = &ids
		_, err := c.RevokeSecurityGroup(r)
		return err
	})
}

// verify compares the changes with the rules read back after writing. An
// addition counts only when a rule with mailfw's description for it is
// there: a silent duplicate of someone else's rule changed nothing.
func (b *Backend) verify(g groupInfo, cs []plan.Change, perms []ecs.Permission,
	gone map[string]bool) (done, notDone []plan.Change) {
	byID := map[string]plan.Observed{}
	var rules []plan.Observed
	for _, p := range perms {
		if o, ok := observe(p, g); ok {
			rules = append(rules, o)
			byID[o.ID] = o
		}
	}
	for _, c := range cs {
		switch c.Action {
		case plan.Add:
			switch o, ok := findRule(rules, c.Rule); {
			case ok && o.Owned && o.Description == c.Rule.Description:
				done = append(done, c)
			case ok:
				b.logger.Info("addition already granted by an existing rule", "sg_id", g.ID,
					"rule", c.Rule.String(), "rule_id", o.ID)
			default:
				notDone = append(notDone, c)
			}
		case plan.Update:
			if o, ok := byID[c.ID]; ok && o.Owned && o.Description == c.Rule.Description {
				done = append(done, c)
			} else {
				notDone = append(notDone, c)
			}
		case plan.Remove:
			_, still := byID[c.ID]
			switch {
			case still:
				notDone = append(notDone, c)
			case !gone[c.ID]:
				done = append(done, c)
			}
		}
	}
	return done, notDone
}

func findRule(rules []plan.Observed, want plan.Rule) (plan.Observed, bool) {
	want.Limit, want.Description = nil, ""
	for _, o := range rules {
		if o.Conditional {
			continue
		}
		if r, ok := o.AsRule(); ok && r.Key() == want.Key() {
			return o, true
		}
	}
	return plan.Observed{}, false
}

// unverified reports a group that could not be read back: what ECS
// acknowledged counts as done, the rest as not done.
func (b *Backend) unverified(g groupInfo, done, notDone []plan.Change, callErr, readErr error) groupResult {
	err := fmt.Errorf("reading the group back: %w", readErr)
	if callErr != nil {
		err = fmt.Errorf("%w; then %w", callErr, err)
	}
	return groupResult{done: done, fail: &ScopeFailure{Scope: g.scope(b.region), Err: err,
		NotDone: notDone, Unverified: true}}
}
