package ufw

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// step is one ufw invocation and the changes it completes. A step with no
// argv completes its changes without a call (the rule is already as asked).
type step struct {
	argv    []string
	changes []plan.Change
	what    string
	// check verifies, from ufw's files re-read after the call, that the
	// call did what it was meant to: ufw reports some refusals ("Could not
	// delete non-existent rule", "Skipping ...") with exit status 0.
	check func(*config) error
}

// located is a tuple and the family whose file holds it.
type located struct {
	fam plan.Family
	t   tuple
}

// readable refuses rules files with tuple lines mailfw cannot read: ufw
// rewrites a whole file on every rule command and drops the lines its own
// reader skips, so any write could lose them.
func (c *config) readable() error {
	_, findings := c.observe()
	var errs []error
	for _, f := range findings {
		if f.ID == FindingUnreadable {
			errs = append(errs, errors.New(f.Message))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("fix these ufw rules first: %w", errors.Join(errs...))
	}
	return nil
}

func (c *config) index() map[string]located {
	m := map[string]located{}
	for _, fr := range c.Files {
		for _, t := range fr.Tuples {
			m[t.Key] = located{fr.Family, t}
		}
	}
	return m
}

// Apply makes the changes with one ufw call each, except that the IPv4 and
// IPv6 halves of an "anywhere" rule share one call. Allows are appended;
// denies are prepended, so they come before every allow of their family.
//
// Every change is checked against ufw's files before anything runs; a
// change that would make ufw replace a rule mailfw does not own (ufw keeps
// one rule per match and overwrites its action and comment) fails the whole
// apply with nothing changed. After each call the files are read again to
// confirm the call's effect.
func (b *Backend) Apply(ctx context.Context, changes []plan.Change) ([]plan.Change, error) {
	c, err := b.readConfig()
	if err != nil {
		return nil, err
	}
	if err := c.readable(); err != nil {
		return nil, fmt.Errorf("applying ufw changes: nothing changed: %w", err)
	}
	steps, err := b.plan(c, changes)
	if err != nil {
		return nil, fmt.Errorf("applying ufw changes: nothing changed: %w", err)
	}
	calls := 0
	for _, s := range steps {
		if s.argv != nil {
			calls++
		}
	}
	b.logger.Info("applying", "changes", len(changes), "ufw_calls", calls)
	var done []plan.Change
	for i, s := range steps {
		if err := b.runStep(ctx, s); err != nil {
			return done, partialError(steps[:i], s, steps[i+1:], err)
		}
		done = append(done, s.changes...)
	}
	if b.enable {
		if err := b.enableIfInactive(ctx); err != nil {
			return done, fmt.Errorf("applying ufw changes: all %d made, but: %w", len(done), err)
		}
	}
	return done, nil
}

func (b *Backend) runStep(ctx context.Context, s step) error {
	if s.argv == nil {
		b.logger.Info("rule already as asked", "rule", s.what)
		return nil
	}
	out, err := b.run.Run(ctx, nil, s.argv[0], s.argv[1:]...)
	if err != nil {
		return err
	}
	c, err := b.readConfig()
	if err != nil {
		return fmt.Errorf("re-reading ufw rules: %w", err)
	}
	if err := s.check(c); err != nil {
		return fmt.Errorf("%w (ufw said: %s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// partialError says what was done, what failed and what was not done. A
// step that completes no change (the delete before a verdict change) is
// listed by what it did.
func partialError(ran []step, failed step, rest []step, err error) error {
	list := func(ss []step) []string {
		var out []string
		for _, s := range ss {
			if len(s.changes) == 0 {
				out = append(out, s.what)
			}
			for _, c := range s.changes {
				out = append(out, describe(c))
			}
		}
		return out
	}
	made, notDone := list(ran), list(append([]step{failed}, rest...))
	return fmt.Errorf("applying ufw changes: %s: %w; done (%d): [%s]; not done (%d): [%s]",
		failed.what, err, len(made), strings.Join(made, "; "),
		len(notDone), strings.Join(notDone, "; "))
}

func describe(c plan.Change) string { return string(c.Action) + " " + c.Rule.String() }

// plan turns changes into steps, refusing any change it cannot make safely.
func (b *Backend) plan(c *config, changes []plan.Change) ([]step, error) {
	idx := c.index()
	predeleted := map[string]bool{}
	var steps []step
	var errs []error
	pairable := map[int]bool{}
	for i, ch := range changes {
		var ss []step
		var err error
		switch ch.Action {
		case plan.Add:
			ss, err = b.addSteps(c, idx, ch, predeleted)
			pairable[len(steps)] = len(ss) == 1 && ss[0].argv != nil && mergeable(ch)
		case plan.Update:
			ss, err = b.updateSteps(c, idx, ch)
		case plan.Remove:
			ss, err = b.removeSteps(idx, ch, predeleted)
			pairable[len(steps)] = len(ss) == 1 && ss[0].argv != nil && mergeable(ch)
		default:
			err = fmt.Errorf("unknown action %q", ch.Action)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("change %d (%s): %w", i+1, describe(ch), err))
			continue
		}
		steps = append(steps, ss...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b.mergeWorld(steps, pairable), nil
}

func (b *Backend) checkRule(c *config, r plan.Rule) error {
	switch {
	case plan.IsCloudRef(r.Source):
		return fmt.Errorf("ufw cannot use the cloud reference %s", r.Source)
	case r.Limit != nil:
		return fmt.Errorf("ufw cannot enforce connections_per_source")
	case r.Protocol != "tcp" && r.Protocol != "udp":
		return fmt.Errorf("protocol %q is not supported", r.Protocol)
	case r.Port < 1 || r.Port > 65535:
		return fmt.Errorf("port %d is out of range", r.Port)
	case r.Family == plan.IPv6 && !c.IPv6:
		return fmt.Errorf("IPv6 is disabled in ufw (IPV6=no in /etc/default/ufw)")
	case r.Family != plan.IPv4 && r.Family != plan.IPv6:
		return fmt.Errorf("family %q is not supported", r.Family)
	}
	src, fam, err := plan.CanonicalSource(r.Source)
	if err != nil || src != r.Source || fam != r.Family {
		return fmt.Errorf("source %q is not a canonical %s CIDR", r.Source, r.Family)
	}
	return nil
}

func verb(v plan.Verdict) string {
	if v == plan.Deny {
		return "deny"
	}
	return "allow"
}

func sameVerdict(action string, v plan.Verdict) bool {
	if v == plan.Deny {
		return action == "deny" || action == "reject"
	}
	return action == "allow"
}

func (b *Backend) addSteps(c *config, idx map[string]located, ch plan.Change,
	predeleted map[string]bool) ([]step, error) {
	r := ch.Rule
	if err := b.checkRule(c, r); err != nil {
		return nil, err
	}
	desc, _ := Description(r.Description)
	comment := markComment(desc)
	want := tuple{Action: verb(r.Verdict), Proto: r.Protocol, DPort: strconv.Itoa(r.Port),
		Dst: "any", SPort: "any", Src: ufwAddr(r.Source)}
	add := step{changes: []plan.Change{ch}, what: describe(ch),
		check: func(c *config) error { return hasRule(c, r, want.Action, comment) }}
	prefix := []string(nil)
	if r.Verdict == plan.Deny {
		prefix = []string{"prepend"}
	}
	old, found := findMatch(idx, r)
	switch {
	case !found:
	case !owned(old.t):
		return nil, fmt.Errorf("ufw already has an unmarked rule with the same match "+
			"(%q, %s line %d); ufw would overwrite it: change or remove it by hand",
			old.t.Key, old.fam, old.t.Line)
	case sameVerdict(old.t.Action, r.Verdict) && old.t.Comment == comment:
		return []step{{changes: []plan.Change{ch}, what: describe(ch)}}, nil
	case sameVerdict(old.t.Action, r.Verdict):
		// ufw updates the comment of the rule in place; prepend would skip it.
		want.Action = old.t.Action
		add.argv = tupleArgv(want, nil, comment)
		return []step{add}, nil
	default:
		// Another verdict on the same match: ufw would rewrite the rule in
		// place, keeping its position; delete it so the new one lands where
		// its verdict belongs.
		b.logger.Info("replacing owned rule of the other verdict", "old", old.t.Key, "rule", r.String())
		predeleted[old.t.Key] = true
		key, fam := old.t.Key, old.fam
		del := step{argv: tupleArgv(old.t, []string{"delete"}, old.t.Comment),
			what:  "delete " + key + " before re-adding it",
			check: func(c *config) error { return hasNoKey(c, fam, key) }}
		add.argv = tupleArgv(want, prefix, comment)
		return []step{del, add}, nil
	}
	add.argv = tupleArgv(want, prefix, comment)
	return []step{add}, nil
}

func (b *Backend) updateSteps(c *config, idx map[string]located, ch plan.Change) ([]step, error) {
	old, err := ownedTuple(idx, ch.ID)
	if err != nil {
		return nil, err
	}
	desc, _ := Description(ch.Rule.Description)
	comment := markComment(desc)
	if old.t.Comment == comment {
		return []step{{changes: []plan.Change{ch}, what: describe(ch)}}, nil
	}
	key, fam := old.t.Key, old.fam
	return []step{{argv: tupleArgv(old.t, nil, comment), changes: []plan.Change{ch},
		what:  describe(ch),
		check: func(c *config) error { return hasKeyComment(c, fam, key, comment) }}}, nil
}

func (b *Backend) removeSteps(idx map[string]located, ch plan.Change,
	predeleted map[string]bool) ([]step, error) {
	if predeleted[ch.ID] {
		return []step{{changes: []plan.Change{ch}, what: describe(ch)}}, nil
	}
	if _, ok := idx[ch.ID]; !ok && !strings.Contains(ch.ID, "#") {
		b.logger.Warn("rule to remove is already gone", "id", ch.ID)
		return []step{{changes: []plan.Change{ch}, what: describe(ch)}}, nil
	}
	old, err := ownedTuple(idx, ch.ID)
	if err != nil && ch.Reason == plan.ReasonExclusive {
		// ownership: exclusive removes unmarked single-port allows too.
		old, err = exclusiveTuple(idx, ch.ID)
	}
	if err != nil {
		return nil, err
	}
	key, fam := old.t.Key, old.fam
	return []step{{argv: tupleArgv(old.t, []string{"delete"}, old.t.Comment),
		changes: []plan.Change{ch}, what: describe(ch),
		check: func(c *config) error { return hasNoKey(c, fam, key) }}}, nil
}

func ownedTuple(idx map[string]located, id string) (located, error) {
	if strings.Contains(id, "#") {
		return located{}, fmt.Errorf("rule %q is one port of a multi-port ufw rule; "+
			"mailfw never changes those", id)
	}
	old, ok := idx[id]
	if !ok {
		return located{}, fmt.Errorf("no ufw rule %q (the rules changed since the plan)", id)
	}
	if !owned(old.t) {
		return located{}, fmt.Errorf("refusing to change ufw rule %q: it lacks the mailfw mark", id)
	}
	return old, nil
}

// exclusiveTuple finds an unmarked rule that exclusive ownership may
// remove: a plain allow of one TCP port, not another tool's.
func exclusiveTuple(idx map[string]located, id string) (located, error) {
	old, ok := idx[id]
	switch {
	case strings.Contains(id, "#"):
		return located{}, fmt.Errorf("rule %q is one port of a multi-port ufw rule; "+
			"mailfw never changes those", id)
	case !ok:
		return located{}, fmt.Errorf("no ufw rule %q (the rules changed since the plan)", id)
	case old.t.Action != "allow" || old.t.Proto != "tcp" || old.t.Route ||
		old.t.Direction != "in" || old.t.IfaceIn != "" || old.t.SApp != "" ||
		old.t.SPort != "any" || old.t.Dst != plan.World(old.fam) ||
		strings.ContainsAny(old.t.DPort, ",:") || old.t.DPort == "any":
		return located{}, fmt.Errorf("refusing to remove ufw rule %q: exclusive ownership "+
			"removes only plain single-port TCP allows", id)
	}
	return old, nil
}

func owned(t tuple) bool {
	o, _ := ownedComment(t.Comment)
	return o
}

// findMatch finds the rule ufw would treat as the same as r: the same
// match, whatever its action and comment.
func findMatch(idx map[string]located, r plan.Rule) (located, bool) {
	for _, l := range idx {
		if l.fam == r.Family && plainMatch(l.t, r) {
			return l, true
		}
	}
	return located{}, false
}

// plainMatch reports whether t matches exactly r's packets with no other
// condition.
func plainMatch(t tuple, r plan.Rule) bool {
	if t.Route || t.Direction != "in" || t.IfaceIn != "" || t.IfaceOut != "" ||
		t.DApp != "" || t.SApp != "" || t.SPort != "any" {
		return false
	}
	if t.Proto != r.Protocol || t.DPort != strconv.Itoa(r.Port) || t.Dst != plan.World(r.Family) {
		return false
	}
	src, _, err := plan.CanonicalSource(t.Src)
	return err == nil && src == r.Source
}

func hasRule(c *config, r plan.Rule, action, comment string) error {
	for _, fr := range c.Files {
		for _, t := range fr.Tuples {
			if fr.Family == r.Family && plainMatch(t, r) {
				if t.Action != action || t.Comment != comment {
					return fmt.Errorf("ufw holds %q with comment %q instead", t.Key, t.Comment)
				}
				return nil
			}
		}
	}
	return fmt.Errorf("ufw did not add the rule")
}

func hasNoKey(c *config, fam plan.Family, key string) error {
	if l, ok := c.index()[key]; ok && l.fam == fam {
		return fmt.Errorf("ufw still holds %q", key)
	}
	return nil
}

func hasKeyComment(c *config, fam plan.Family, key, comment string) error {
	l, ok := c.index()[key]
	if !ok || l.fam != fam {
		return fmt.Errorf("ufw no longer holds %q", key)
	}
	if l.t.Comment != comment {
		return fmt.Errorf("ufw holds %q with comment %q, not %q", key, l.t.Comment, comment)
	}
	return nil
}

// ufwAddr writes a source the way ufw records it: a host without its
// prefix length.
func ufwAddr(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err == nil && p.IsSingleIP() {
		return p.Addr().String()
	}
	return cidr
}

// tupleArgv is the ufw command for t, with prefix ("delete", "prepend")
// before the action.
func tupleArgv(t tuple, prefix []string, comment string) []string {
	a := append([]string{"ufw"}, prefix...)
	a = append(a, t.Action)
	if t.IfaceIn != "" {
		a = append(a, "in", "on", t.IfaceIn)
	}
	if t.LogType != "" {
		a = append(a, t.LogType)
	}
	if t.DApp == "" && t.SApp == "" && t.Proto != "any" {
		a = append(a, "proto", t.Proto)
	}
	if t.Src != "" {
		a = append(a, "from", t.Src)
	}
	switch {
	case t.SApp != "":
		a = append(a, "app", t.SApp)
	case t.SPort != "any":
		a = append(a, "port", t.SPort)
	}
	if t.Dst == "0.0.0.0/0" || t.Dst == "::/0" {
		a = append(a, "to", "any") // the source already says which family
	} else {
		a = append(a, "to", t.Dst)
	}
	switch {
	case t.DApp != "":
		a = append(a, "app", t.DApp)
	case t.DPort != "any":
		a = append(a, "port", t.DPort)
	}
	if comment != "" {
		a = append(a, "comment", comment)
	}
	return a
}

// mergeable reports whether an add or a removal is one half of an
// "anywhere" rule.
func mergeable(ch plan.Change) bool {
	return ch.Rule.Source == plan.World(ch.Rule.Family)
}

// mergeWorld joins the IPv4 and IPv6 halves of an "anywhere" add or
// removal into one ufw call without "from", which ufw applies to both
// families. Halves pair only when their commands are otherwise equal.
func (b *Backend) mergeWorld(steps []step, pairable map[int]bool) []step {
	out := make([]step, 0, len(steps))
	used := map[int]bool{}
	for i, s := range steps {
		if used[i] {
			continue
		}
		if pairable[i] {
			if j, ok := partner(steps, pairable, used, i); ok {
				used[j] = true
				out = append(out, joinWorld(s, steps[j]))
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func partner(steps []step, pairable map[int]bool, used map[int]bool, i int) (int, bool) {
	a := steps[i].changes[0].Rule
	for j := i + 1; j < len(steps); j++ {
		if !pairable[j] || used[j] {
			continue
		}
		c := steps[j].changes[0].Rule
		if steps[j].changes[0].Action == steps[i].changes[0].Action &&
			c.Family != a.Family && c.Port == a.Port && c.Protocol == a.Protocol &&
			c.Verdict == a.Verdict &&
			strings.Join(stripFrom(steps[i].argv), "\x00") == strings.Join(stripFrom(steps[j].argv), "\x00") {
			return j, true
		}
	}
	return 0, false
}

func joinWorld(s4, s6 step) step {
	c4, c6 := s4.check, s6.check
	return step{argv: stripFrom(s4.argv), changes: append(append([]plan.Change(nil), s4.changes...), s6.changes...),
		what: s4.what + " and " + s6.what,
		check: func(c *config) error {
			return errors.Join(c4(c), c6(c))
		}}
}

// stripFrom drops "from <world>" from an add: ufw then writes both families.
func stripFrom(argv []string) []string {
	out := make([]string, 0, len(argv))
	for k := 0; k < len(argv); k++ {
		if argv[k] == "from" {
			k++
			continue
		}
		out = append(out, argv[k])
	}
	return out
}

// enableIfInactive enables ufw when it is inactive and a rule allows SSH.
func (b *Backend) enableIfInactive(ctx context.Context) error {
	st, err := b.status(ctx)
	if err != nil || st.Active {
		return err
	}
	c, err := b.readConfig()
	if err != nil {
		return err
	}
	sc, _ := c.observe()
	ssh := plan.Rule{Family: plan.IPv4, Protocol: "tcp", Port: 22}
	found := false
	for _, o := range sc.Rules {
		ssh.Family, ssh.Source = o.Family, o.Source
		if o.Verdict == plan.Allow && o.Covers(ssh) {
			found = true
		}
	}
	if !found {
		return ErrNoSSHAllow
	}
	b.logger.Info("enabling ufw: the target asks for it and an SSH allow exists")
	if _, err := b.run.Run(ctx, nil, "ufw", "--force", "enable"); err != nil {
		return fmt.Errorf("enabling ufw: %w", err)
	}
	return nil
}
