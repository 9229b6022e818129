package firewalld

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mailfw/mailfw/plan"
)

// ErrRuntimeDirect refuses the reload that creates the mailfw policies
// while firewalld holds runtime-only direct rules, which a reload would drop
// and which this backend cannot restore faithfully.
var ErrRuntimeDirect = errors.New("firewalld has runtime-only direct rules that a reload would drop")

// step is one change rendered for firewall-cmd.
type step struct {
	change plan.Change
	policy string
	text   string
}

// batch is the changes of one Apply, by policy.
type batch struct {
	adds, removes map[string][]step
	updates       []plan.Change
	all           []step
}

func newBatch(changes []plan.Change) (*batch, error) {
	bt := &batch{adds: map[string][]step{}, removes: map[string][]step{}}
	for _, c := range changes {
		if c.Scope != "" && c.Scope != ScopeID {
			return nil, fmt.Errorf("nothing changed: change %s is for scope %q, not %q",
				c.Rule, c.Scope, ScopeID)
		}
		switch c.Action {
		case plan.Add:
			text, err := renderRule(c.Rule)
			if err != nil {
				return nil, fmt.Errorf("nothing changed: %w", err)
			}
			p := AllowPolicy
			if c.Rule.Verdict == plan.Deny {
				p = DenyPolicy
			}
			s := step{c, p, text}
			bt.adds[p] = append(bt.adds[p], s)
			bt.all = append(bt.all, s)
		case plan.Remove:
			p, text, err := splitOwnedID(c.ID)
			if err != nil {
				return nil, fmt.Errorf("nothing changed: removing %s: %w", c.Rule, err)
			}
			if bt.adding(p, text) {
				// A rule present in one configuration only, removed and
				// added again: the add puts it into both, which is all
				// the pair asks for.
				bt.updates = append(bt.updates, c)
				continue
			}
			s := step{c, p, text}
			bt.removes[p] = append(bt.removes[p], s)
			bt.all = append(bt.all, s)
		case plan.Update:
			// Descriptions are not stored, so an update has nothing to
			// write; it is done as soon as it is asked for.
			bt.updates = append(bt.updates, c)
		default:
			return nil, fmt.Errorf("nothing changed: unknown action %q", c.Action)
		}
	}
	return bt, nil
}

func (bt *batch) adding(policy, text string) bool {
	for _, s := range bt.adds[policy] {
		if s.text == text {
			return true
		}
	}
	return false
}

// calls renders one phase: one firewall-cmd call per policy.
func phaseCalls(permanent bool, op string, byPolicy map[string][]step) [][]string {
	var calls [][]string
	for _, p := range sortedKeys(byPolicy) {
		args := []string{"--policy=" + p}
		if permanent {
			args = append([]string{"--permanent"}, args...)
		}
		for _, s := range byPolicy[p] {
			args = append(args, "--"+op+"-rich-rule="+s.text)
		}
		calls = append(calls, args)
	}
	return calls
}

// Apply writes the changes into the mailfw policies, in the runtime and
// permanent configurations at once, adds before removes, and reads the
// policies back to check that every change took. The first apply, which has to create
// the policies, reloads firewalld once and restores every runtime-only
// entry the reload dropped; see [Backend.Notes].
func (b *Backend) Apply(ctx context.Context, changes []plan.Change) ([]plan.Change, error) {
	b.setNotes(nil)
	if len(changes) == 0 {
		return nil, nil
	}
	bt, err := newBatch(changes)
	if err != nil {
		return nil, err
	}
	inRuntime, inPermanent, err := b.policyNames(ctx)
	if err != nil {
		return nil, err
	}
	for p := range bt.adds {
		if !contains(inRuntime, p) {
			return b.applyWithReload(ctx, bt, inRuntime, inPermanent)
		}
	}
	return b.applyDirect(ctx, bt)
}

// policyNames lists the policies of both configurations, from the last
// Read when there was one.
func (b *Backend) policyNames(ctx context.Context) (runtime, permanent []string, err error) {
	b.mu.Lock()
	seen := b.seen
	b.seen = nil
	b.mu.Unlock()
	if seen != nil {
		return seen[0], seen[1], nil
	}
	outs, _, err := b.parallel(ctx, [][]string{{"--get-policies"}, {"--permanent", "--get-policies"}})
	if err != nil {
		return nil, nil, fmt.Errorf("nothing changed: listing policies: %w", err)
	}
	return strings.Fields(outs[0]), strings.Fields(outs[1]), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// applyDirect changes both configurations without a reload.
func (b *Backend) applyDirect(ctx context.Context, bt *batch) ([]plan.Change, error) {
	var warnings []string
	// Both configurations and both policies change at once; a failure in
	// one leaves a rule in one configuration only, which the next Read
	// reports so that a rerun completes it.
	for _, op := range []string{"add", "remove"} {
		steps := bt.adds
		if op == "remove" {
			steps = bt.removes
		}
		calls := append(phaseCalls(true, op, steps), phaseCalls(false, op, steps)...)
		if len(calls) == 0 {
			continue
		}
		w, err := b.parallelWarnings(ctx, calls)
		if err != nil {
			return b.partial(ctx, bt, err)
		}
		warnings = append(warnings, w...)
	}
	if len(warnings) == 0 {
		// firewall-cmd exited 0 and warned of no item: every rich rule of
		// the batch took, in both configurations (checked on firewalld
		// 1.3.3: a batch item that does not take prints "Warning:" and the
		// call still exits 0). Reading back would cost two more calls.
		b.log.Info("applied", "changes", len(bt.all)+len(bt.updates), "verified_by", "no warnings")
		return append(append([]plan.Change(nil), bt.updates...), changesOf(bt.all)...), nil
	}
	b.log.Info("firewall-cmd warned; reading back", "warnings", warnings)
	return b.verify(ctx, bt)
}

// parallelWarnings runs the calls like parallel and returns what they
// wrote to stderr.
func (b *Backend) parallelWarnings(ctx context.Context, calls [][]string) ([]string, error) {
	warn := make([]string, len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallel)
	for i, c := range calls {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			var stderr []byte
			_, stderr, errs[i] = b.run.RunOutput(ctx, nil, "firewall-cmd", c...)
			warn[i] = strings.TrimSpace(string(stderr))
		})
	}
	wg.Wait()
	return slices.DeleteFunc(warn, func(s string) bool { return s == "" }), errors.Join(errs...)
}

func changesOf(steps []step) []plan.Change {
	out := make([]plan.Change, len(steps))
	for i, s := range steps {
		out[i] = s.change
	}
	return out
}

// verify reads the mailfw policies back from both configurations and
// returns the changes that hold in both.
func (b *Backend) verify(ctx context.Context, bt *batch) ([]plan.Change, error) {
	done, pending, err := b.check(ctx, bt)
	if err != nil {
		return done, fmt.Errorf("changes were sent but could not be read back: %w", err)
	}
	if len(pending) > 0 {
		return done, fmt.Errorf("firewalld accepted the calls but %d of %d changes did not "+
			"take effect: %s", len(pending), len(bt.all), strings.Join(pending, "; "))
	}
	b.log.Info("applied", "changes", len(done))
	return done, nil
}

// check classifies every step by the views it holds in.
func (b *Backend) check(ctx context.Context, bt *batch) (done []plan.Change, pending []string, err error) {
	outs, _, err := b.parallel(ctx, [][]string{{"--list-all-policies"},
		{"--permanent", "--list-all-policies"}})
	if err != nil {
		return nil, nil, err
	}
	var views [2]map[string]*block
	for i, out := range outs {
		bs, err := parseBlocks(out)
		if err != nil {
			return nil, nil, err
		}
		views[i] = byName(bs)
	}
	has := func(v map[string]*block, s step) bool {
		p := v[s.policy]
		return p != nil && contains(p.Fields["rich rules"], s.text)
	}
	done = append(done, bt.updates...)
	for _, s := range bt.all {
		want := s.change.Action == plan.Add
		rt, perm := has(views[0], s) == want, has(views[1], s) == want
		switch {
		case rt && perm:
			done = append(done, s.change)
		case rt:
			pending = append(pending, fmt.Sprintf("%s %s: runtime only", s.change.Action, s.change.Rule))
		case perm:
			pending = append(pending, fmt.Sprintf("%s %s: permanent only", s.change.Action, s.change.Rule))
		default:
			pending = append(pending, fmt.Sprintf("%s %s: not done", s.change.Action, s.change.Rule))
		}
	}
	return done, pending, nil
}

// partial reports exactly what a failed apply did.
func (b *Backend) partial(ctx context.Context, bt *batch, cause error) ([]plan.Change, error) {
	done, pending, err := b.check(ctx, bt)
	if err != nil {
		return nil, fmt.Errorf("applying to firewalld: %w; reading back what was done also "+
			"failed: %v", cause, err)
	}
	return done, fmt.Errorf("applying to firewalld: %w; %d of %d changes done in runtime "+
		"and permanent, the rest: %s; a rerun completes them", cause, len(done)-len(bt.updates),
		len(bt.all), strings.Join(pending, "; "))
}

func (b *Backend) setNotes(n []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notes = n
}

// applyWithReload creates the missing mailfw policies in the permanent
// configuration, writes the changes there, reloads, and puts back every
// runtime entry the reload changed, so the runtime ends as it was plus
// mailfw's policies.
func (b *Backend) applyWithReload(ctx context.Context, bt *batch, inRuntime, inPermanent []string) ([]plan.Change, error) {
	before, err := b.snapshot(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("nothing changed: %w", err)
	}
	beforePerm, err := b.snapshot(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("nothing changed: %w", err)
	}
	if err := b.checkDirect(ctx); err != nil {
		return nil, fmt.Errorf("nothing changed: %w", err)
	}
	held, err := b.holdThroughReload(ctx, before, beforePerm)
	if err != nil {
		return nil, err
	}
	var create []string
	for _, p := range []string{DenyPolicy, AllowPolicy} {
		if !contains(inPermanent, p) {
			create = append(create, p)
		}
	}
	if err := b.createPolicies(ctx, create); err != nil {
		return nil, errors.Join(fmt.Errorf("creating policies %v in the permanent configuration "+
			"(runtime unchanged, no rule written; a rerun continues): %w", create, err),
			b.release(ctx, held))
	}
	if err := b.writePermanent(ctx, bt); err != nil {
		return nil, errors.Join(err, b.release(ctx, held))
	}
	b.log.Info("reloading firewalld to bring the new mailfw policies into force",
		"created", create, "missing_in_runtime", missingOf(inRuntime))
	_, reloadErr := b.fc(ctx, "--reload")
	releaseErr := b.release(ctx, held)
	notes, err := b.restoreRuntime(ctx, before)
	err = errors.Join(reloadErr, releaseErr, err)
	head := []string{fmt.Sprintf("created policies %s and reloaded firewalld once",
		strings.Join(missingOf(inRuntime), ", "))}
	if len(held) > 0 {
		head = append(head, fmt.Sprintf("kept %d runtime-only entries in force across the "+
			"reload (written to the permanent configuration for it, then taken out again): %s",
			len(held), cut(itemStrings(held))))
	}
	notes = append(head, notes...)
	b.setNotes(notes)
	for _, n := range notes {
		b.log.Info(n)
	}
	if err != nil {
		done, _, _ := b.check(ctx, bt)
		return done, fmt.Errorf("firewalld was reloaded and the mailfw policies are in force, "+
			"but %w", err)
	}
	return b.verify(ctx, bt)
}

func missingOf(inRuntime []string) []string {
	var out []string
	for _, p := range []string{DenyPolicy, AllowPolicy} {
		if !contains(inRuntime, p) {
			out = append(out, p)
		}
	}
	return out
}

// createPolicies makes the policies in the permanent configuration.
// firewall-cmd takes one of these settings per call.
func (b *Backend) createPolicies(ctx context.Context, names []string) error {
	prio := map[string]int{AllowPolicy: AllowPriority, DenyPolicy: DenyPriority}
	desc := map[string]string{
		AllowPolicy: "mailfw: allow rules, evaluated after the zones so that bans in zones hold",
		DenyPolicy:  "mailfw: deny rules, evaluated before the zones so that they beat zone services",
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() { errs[i] = b.createPolicy(ctx, n, prio[n], desc[n]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// createPolicy makes one policy, one setting per call.
func (b *Backend) createPolicy(ctx context.Context, n string, prio int, desc string) error {
	for _, args := range [][]string{
		{"--new-policy=" + n},
		{"--policy=" + n, fmt.Sprintf("--set-priority=%d", prio)},
		{"--policy=" + n, "--add-ingress-zone=ANY"},
		{"--policy=" + n, "--add-egress-zone=HOST"},
		{"--policy=" + n, "--set-short=mailfw"},
		{"--policy=" + n, "--set-description=" + desc},
	} {
		if _, err := b.fc(ctx, append([]string{"--permanent"}, args...)...); err != nil {
			return fmt.Errorf("creating policy %s: %w", n, err)
		}
	}
	return nil
}

// checkDirect refuses when the runtime holds direct rules, chains or
// passthroughs the permanent configuration lacks.
func (b *Backend) checkDirect(ctx context.Context) error {
	var calls [][]string
	for _, q := range []string{"--get-all-rules", "--get-all-chains", "--get-all-passthroughs"} {
		calls = append(calls, []string{"--direct", q}, []string{"--permanent", "--direct", q})
	}
	outs, _, err := b.parallel(ctx, calls)
	if err != nil {
		return fmt.Errorf("reading direct rules: %w", err)
	}
	var extra []string
	for i := 0; i < len(outs); i += 2 {
		perm := map[string]bool{}
		for _, l := range strings.Split(outs[i+1], "\n") {
			perm[l] = true
		}
		for _, l := range strings.Split(outs[i], "\n") {
			if strings.TrimSpace(l) != "" && !perm[l] {
				extra = append(extra, l)
			}
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%w (%s); make them permanent or remove them, then apply again",
			ErrRuntimeDirect, cut(extra))
	}
	return nil
}

// restoreRuntime puts back the runtime entries of every zone and foreign
// policy that the reload changed, and checks that it worked.
func (b *Backend) restoreRuntime(ctx context.Context, before view) ([]string, error) {
	after, err := b.snapshot(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("reading the runtime after the reload failed, so runtime-only "+
			"entries may be lost: %w", err)
	}
	lost := foreign(minus(before.items(), after.items()))
	gained := foreign(minus(after.items(), before.items()))
	var errs []error
	for _, c := range restoreCalls(lost, "add") {
		if _, err := b.fc(ctx, c...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range restoreCalls(gained, "remove") {
		if _, err := b.fc(ctx, c...); err != nil {
			errs = append(errs, err)
		}
	}
	var notes []string
	if len(lost) > 0 {
		notes = append(notes, fmt.Sprintf("carried %d runtime-only entries across the reload: %s",
			len(lost), cut(itemStrings(lost))))
	}
	if len(gained) > 0 {
		notes = append(notes, fmt.Sprintf("took out again %d permanent-only entries the reload "+
			"brought into the runtime: %s", len(gained), cut(itemStrings(gained))))
	}
	final, err := b.snapshot(ctx, false)
	if err != nil {
		return notes, fmt.Errorf("checking the restored runtime: %w", err)
	}
	still := append(foreign(minus(before.items(), final.items())),
		foreign(minus(final.items(), before.items()))...)
	if len(still) > 0 {
		return notes, fmt.Errorf("these runtime entries differ from before the reload and "+
			"need fixing by hand: %s (%w)", strings.Join(itemStrings(still), "; "), errors.Join(errs...))
	}
	return notes, nil
}

// foreign drops the entries of mailfw's own policies.
func foreign(items []item) []item {
	var out []item
	for _, it := range items {
		if it.Kind == "policy" && strings.HasPrefix(it.Holder, ownedPrefix) {
			continue
		}
		out = append(out, it)
	}
	return out
}

func itemStrings(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.String()
	}
	return out
}

// restoreCalls groups entries into one firewall-cmd call per zone or
// policy and kind of entry (firewall-cmd refuses to mix kinds). Interfaces
// and sources are moved with --change-*, since the reload may have bound
// them elsewhere.
func restoreCalls(items []item, op string) [][]string {
	groups := map[string][]string{}
	var keys []string
	for _, it := range items {
		opt := optionFor(it.Key)
		verb := op
		if op == "add" && (it.Key == "interfaces" || it.Key == "sources") {
			verb = "change"
		}
		g := fmt.Sprintf("--%s=%s\x00%s-%s", it.Kind, it.Holder, verb, opt)
		if _, ok := groups[g]; !ok {
			keys = append(keys, g)
		}
		arg := "--" + verb + "-" + opt
		if it.Key != "masquerade" {
			arg += "=" + it.Value
		}
		groups[g] = append(groups[g], arg)
	}
	sort.Strings(keys)
	var calls [][]string
	for _, g := range keys {
		holder, _, _ := strings.Cut(g, "\x00")
		calls = append(calls, append([]string{holder}, groups[g]...))
	}
	return calls
}

// snapshot reads the zones, policies and ipset entries of the runtime, or
// of the permanent configuration.
func (b *Backend) snapshot(ctx context.Context, permanent bool) (view, error) {
	pre := []string{}
	if permanent {
		pre = []string{"--permanent"}
	}
	with := func(args ...string) []string { return append(append([]string{}, pre...), args...) }
	outs, _, err := b.parallel(ctx, [][]string{with("--list-all-zones"), with("--list-all-policies"),
		with("--get-ipsets")})
	if err != nil {
		return view{}, fmt.Errorf("reading the configuration (permanent=%t): %w", permanent, err)
	}
	var v view
	for i, m := range []*map[string]*block{&v.Zones, &v.Policies} {
		bs, err := parseBlocks(outs[i])
		if err != nil {
			return view{}, fmt.Errorf("parsing firewall-cmd output: %w", err)
		}
		*m = byName(bs)
	}
	names := strings.Fields(outs[2])
	calls := make([][]string, len(names))
	for i, n := range names {
		calls[i] = with("--ipset="+n, "--get-entries")
	}
	entries, _, err := b.parallel(ctx, calls)
	if err != nil {
		return view{}, fmt.Errorf("reading ipset entries: %w", err)
	}
	v.Ipsets = map[string]*block{}
	for i, n := range names {
		v.Ipsets[n] = &block{Name: n, Fields: map[string][]string{"entries": strings.Fields(entries[i])}}
	}
	return v, nil
}

// holdable are the entries that can be written to the permanent
// configuration for the span of a reload without touching bindings.
var holdable = map[string]bool{"services": true, "ports": true, "protocols": true,
	"source-ports": true, "icmp-blocks": true, "rich rules": true, "entries": true}

// holdThroughReload writes the runtime-only entries (bans, ports added by
// hand) into the permanent configuration, so that the reload never drops
// them, not even for a moment. It returns what it wrote, for [release].
func (b *Backend) holdThroughReload(ctx context.Context, rt, perm view) ([]item, error) {
	var held []item
	for _, it := range foreign(minus(rt.items(), perm.items())) {
		if holdable[it.Key] {
			held = append(held, it)
		}
	}
	var errs []error
	for _, c := range restoreCalls(held, "add") {
		if _, err := b.fc(ctx, append([]string{"--permanent"}, c...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if rerr := b.release(ctx, held); rerr != nil {
			return nil, fmt.Errorf("writing runtime-only entries to the permanent configuration "+
				"for the reload failed (%w), and so did taking them out again: %v", err, rerr)
		}
		return nil, fmt.Errorf("nothing changed: writing runtime-only entries to the permanent "+
			"configuration for the reload: %w", err)
	}
	return held, nil
}

// release takes the held entries out of the permanent configuration again;
// the runtime keeps them.
func (b *Backend) release(ctx context.Context, held []item) error {
	var errs []error
	for _, c := range restoreCalls(held, "remove") {
		if _, err := b.fc(ctx, append([]string{"--permanent"}, c...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("these runtime-only entries were written to the permanent "+
			"configuration for the reload and may still be there; remove them with "+
			"firewall-cmd --permanent: %s: %w", strings.Join(itemStrings(held), "; "), err)
	}
	return nil
}

// writePermanent writes the batch into the permanent configuration only.
func (b *Backend) writePermanent(ctx context.Context, bt *batch) error {
	for _, op := range []string{"add", "remove"} {
		steps := bt.adds
		if op == "remove" {
			steps = bt.removes
		}
		if calls := phaseCalls(true, op, steps); len(calls) > 0 {
			if _, _, err := b.parallel(ctx, calls); err != nil {
				return fmt.Errorf("writing rules to the permanent configuration (runtime "+
					"unchanged, not reloaded; a rerun continues): %w", err)
			}
		}
	}
	return nil
}
