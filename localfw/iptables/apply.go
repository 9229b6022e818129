package iptables

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// restoreWait is how long iptables-restore waits for the xtables lock.
const restoreWait = "--wait=30"

// txn is the one iptables-restore transaction of one family.
type txn struct {
	family plan.Family
	input  []byte // nil when the family is already as asked
	done   []plan.Change
	rules  int    // native rules in MAILFW-INPUT afterwards
	jump   string // what happens to the jump, for the log
}

// Apply makes the changes, one iptables-restore --noflush transaction per
// family, each validated first with --test. Both families are read and
// validated before either is written, so a mistake in the changes leaves
// everything as it was. If the IPv6 write fails after the IPv4 one
// succeeded, the IPv4 changes are returned as done and the error says so.
func (b *Backend) Apply(ctx context.Context, changes []plan.Change) ([]plan.Change, error) {
	byFam := map[plan.Family][]plan.Change{}
	for _, c := range changes {
		if err := checkChange(c); err != nil {
			return nil, err
		}
		byFam[c.Rule.Family] = append(byFam[c.Rule.Family], c)
	}
	if len(byFam[plan.IPv6]) > 0 && !b.hasIPv6() {
		return nil, fmt.Errorf("applying ipv6 changes: ip6tables is not installed")
	}
	if len(changes) == 0 {
		return nil, nil
	}
	m, _, _, err := b.mode(ctx)
	if err != nil {
		return nil, err
	}
	var txs []*txn
	for _, f := range []plan.Family{plan.IPv4, plan.IPv6} {
		if len(byFam[f]) == 0 {
			continue
		}
		tx, err := b.prepare(ctx, m, f, byFam[f])
		if err != nil {
			return nil, fmt.Errorf("nothing applied: %w", err)
		}
		txs = append(txs, tx)
	}
	return b.commit(ctx, m, txs)
}

// checkChange refuses what this backend never does.
func checkChange(c plan.Change) error {
	if c.Scope != ScopeID && c.Scope != "" {
		return fmt.Errorf("change %s: unknown scope %q (this target has only %q)", c.Rule, c.Scope, ScopeID)
	}
	if c.Rule.Family != plan.IPv4 && c.Rule.Family != plan.IPv6 {
		return fmt.Errorf("change %s: iptables rules take IPv4 or IPv6 addresses only", c.Rule)
	}
	if c.Action != plan.Add {
		return nil
	}
	r := c.Rule
	if r.Protocol != "tcp" || r.Port < 1 || r.Port > 65535 {
		return fmt.Errorf("change %s: only single TCP ports can be added", r)
	}
	if _, fam, err := plan.CanonicalSource(r.Source); err != nil || fam != r.Family {
		return fmt.Errorf("change %s: source %q is not an %s CIDR", r, r.Source, r.Family)
	}
	if r.Verdict != plan.Allow && r.Verdict != plan.Deny {
		return fmt.Errorf("change %s: unknown verdict %q", r, r.Verdict)
	}
	if r.Limit != nil && (r.Verdict != plan.Allow || r.Limit.ConnectionsPerSource < 1) {
		return fmt.Errorf("change %s: a limit needs an allow and at least one connection", r)
	}
	return nil
}

// prepare reads one family, works out its transaction and validates it.
func (b *Backend) prepare(ctx context.Context, m Mode, f plan.Family, cs []plan.Change) (*txn, error) {
	t, err := b.save(ctx, m, f)
	if err != nil {
		return nil, err
	}
	tx, err := plan2txn(t, cs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	if tx.input == nil {
		b.logger.Info("rules already as asked", "family", f, "changes", len(cs))
		return tx, nil
	}
	restore := tool(b.runner, m, f, "restore")
	if _, err := b.runner.Run(ctx, tx.input, restore, restoreWait, "--test", "--noflush"); err != nil {
		return nil, fmt.Errorf("validating %s changes: %w", f, err)
	}
	return tx, nil
}

// commit runs the prepared transactions in order.
func (b *Backend) commit(ctx context.Context, m Mode, txs []*txn) ([]plan.Change, error) {
	var done []plan.Change
	var doneFams []string
	for i, tx := range txs {
		if tx.input != nil {
			restore := tool(b.runner, m, tx.family, "restore")
			if _, err := b.runner.Run(ctx, tx.input, restore, restoreWait, "--noflush"); err != nil {
				return done, partialError(doneFams, txs[i:], err)
			}
			b.logger.Info("applied", "family", tx.family, "changes", len(tx.done), "chain_rules", tx.rules,
				"jump", tx.jump)
		}
		done = append(done, tx.done...)
		doneFams = append(doneFams, fmt.Sprintf("%s (%d changes)", tx.family, len(tx.done)))
	}
	return done, nil
}

func partialError(doneFams []string, left []*txn, err error) error {
	var notDone []string
	for _, tx := range left {
		notDone = append(notDone, fmt.Sprintf("%s (%d changes)", tx.family, len(tx.done)))
	}
	applied := "nothing"
	if len(doneFams) > 0 {
		applied = strings.Join(doneFams, ", ")
	}
	return fmt.Errorf("applied %s; not applied: %s: %w", applied, strings.Join(notDone, ", "), err)
}

// plan2txn computes the transaction that makes t carry the changes. It
// rewrites MAILFW-INPUT as a whole (flushed and refilled inside the one
// restore, so atomically) and touches INPUT only to place the jump.
func plan2txn(t *table, cs []plan.Change) (*txn, error) {
	foreign, entries := t.chainContents()
	ed := newEdit(t.family, entries)
	tx := &txn{family: t.family}
	for _, c := range cs {
		if err := ed.change(c); err != nil {
			return nil, err
		}
		tx.done = append(tx.done, c)
	}
	keep, raw := ed.result(entries)
	lines := chainLines(foreign, raw, keep)
	tx.rules = len(lines)
	tx.input, tx.jump = render(t, lines, keep)
	return tx, nil
}

// edit collects the changes to mailfw's entries of one family.
type edit struct {
	family  plan.Family
	byID    map[string][]*entry
	removed map[*entry]bool
	adds    []plan.Rule
}

func newEdit(f plan.Family, entries []*entry) *edit {
	ed := &edit{family: f, byID: map[string][]*entry{}, removed: map[*entry]bool{}}
	for _, e := range entries {
		ed.byID[e.id] = append(ed.byID[e.id], e)
	}
	return ed
}

// find returns the first entry with the id that is not removed yet.
func (ed *edit) find(id string) *entry {
	for _, e := range ed.byID[id] {
		if !ed.removed[e] {
			return e
		}
	}
	return nil
}

func (ed *edit) change(c plan.Change) error {
	switch c.Action {
	case plan.Remove:
		e := ed.find(c.ID)
		if e == nil && !strings.HasPrefix(c.ID, string(ed.family)+": ") {
			return fmt.Errorf("refusing to remove %s: mailfw changes only its own rules in %s", c.ID, Chain)
		}
		// A rule already gone leaves the state as the change asks.
		if e != nil {
			ed.removed[e] = true
		}
	case plan.Update:
		e := ed.find(c.ID)
		if e == nil || !e.ok {
			return fmt.Errorf("updating %s: rule %q not found; the firewall changed since the plan was made", c.Rule, c.ID)
		}
		e.rule.Description, _ = StoredDescription(c.Rule.Description)
	case plan.Add:
		r := c.Rule
		r.Description, _ = StoredDescription(r.Description)
		r.Source, _, _ = plan.CanonicalSource(r.Source)
		ed.adds = append(ed.adds, r)
	default:
		return fmt.Errorf("change %s: unknown action %q", c.Rule, c.Action)
	}
	return nil
}

// result is the entries left, in mailfw's form (keep, one per key, adds
// included) and not (raw, kept as they are).
func (ed *edit) result(entries []*entry) (keep, raw []*entry) {
	byKey := map[string]*entry{}
	for _, e := range entries {
		switch {
		case ed.removed[e]:
		case !e.ok:
			raw = append(raw, e)
		case byKey[e.rule.Key()] == nil:
			byKey[e.rule.Key()] = e
			keep = append(keep, e)
		}
	}
	for _, r := range ed.adds {
		if e := byKey[r.Key()]; e != nil {
			e.rule.Description = r.Description
			continue
		}
		e := &entry{rule: r, ok: true}
		byKey[r.Key()] = e
		keep = append(keep, e)
	}
	return keep, raw
}

// chainLines is the new content of MAILFW-INPUT: rules others put there
// first, then mailfw's rules it cannot rewrite, then its denies, the
// connection limits, and the allows, each group sorted.
func chainLines(foreign []*rule, raw, keep []*entry) []string {
	var out []string
	for _, r := range foreign {
		out = append(out, r.spec())
	}
	for _, e := range raw {
		for _, r := range e.native {
			out = append(out, r.spec())
		}
	}
	rs := make([]plan.Rule, len(keep))
	for i, e := range keep {
		rs[i] = e.rule
	}
	slices.SortFunc(rs, compareRules)
	for _, pass := range []func(plan.Rule) []string{denyArgs, limitArgs, allowArgs} {
		for _, r := range rs {
			if args := pass(r); args != nil {
				out = append(out, joinArgs(args))
			}
		}
	}
	return out
}

func compareRules(a, b plan.Rule) int {
	if a.Port != b.Port {
		return a.Port - b.Port
	}
	if c := prefixLess(a.Source, b.Source); c != 0 {
		return c
	}
	return strings.Compare(a.Key(), b.Key())
}

// matchArgs are the words that select r's packets.
func matchArgs(r plan.Rule) []string {
	var args []string
	if r.Source != plan.World(r.Family) {
		args = append(args, "-s", r.Source)
	}
	return append(args, "-p", "tcp", "-m", "tcp", "--dport", strconv.Itoa(r.Port))
}

func commentArgs(r plan.Rule) []string {
	return []string{"-m", "comment", "--comment", markComment(r.Description)}
}

// rejectArgs is how mailfw refuses: a TCP reset, so a refused sender
// learns at once instead of waiting for a timeout.
var rejectArgs = []string{"-j", "REJECT", "--reject-with", "tcp-reset"}

func denyArgs(r plan.Rule) []string {
	if r.Verdict != plan.Deny {
		return nil
	}
	return slices.Concat(matchArgs(r), commentArgs(r), rejectArgs)
}

func limitArgs(r plan.Rule) []string {
	if r.Verdict != plan.Allow || r.Limit == nil {
		return nil
	}
	mask := "32"
	if r.Family == plan.IPv6 {
		mask = "128"
	}
	return slices.Concat(matchArgs(r), []string{"-m", "connlimit", "--connlimit-above",
		strconv.Itoa(r.Limit.ConnectionsPerSource), "--connlimit-mask", mask, "--connlimit-saddr"},
		commentArgs(r), rejectArgs)
}

func allowArgs(r plan.Rule) []string {
	if r.Verdict != plan.Allow {
		return nil
	}
	return slices.Concat(matchArgs(r), commentArgs(r), []string{"-j", "ACCEPT"})
}

// jumpArgs is the jump mailfw puts in INPUT.
var jumpArgs = []string{"-m", "comment", "--comment", Mark, "-j", Chain}

// render writes the iptables-restore input that turns t's MAILFW-INPUT
// into lines and places the jump; nil when nothing would change.
func render(t *table, lines []string, keep []*entry) (input []byte, jump string) {
	var current []string
	for _, r := range t.rules[Chain] {
		current = append(current, r.spec())
	}
	var extra []plan.Rule
	for _, e := range keep {
		extra = append(extra, e.rule)
	}
	lay := t.layout(mailPortsOf(nil, extra...))
	exists := t.chains[Chain]
	if len(lines) == 0 && !exists {
		return nil, "none"
	}
	if len(lines) > 0 && exists && slices.Equal(lines, current) && lay.settled() {
		return nil, fmt.Sprintf("stays at %d", lay.jumps[0]+1)
	}
	if len(lines) == 0 && len(current) == 0 && len(lay.jumps)+len(lay.badJumps) == 0 && len(lay.refs) > 0 {
		return nil, "none; the empty chain stays for the rules that jump to it"
	}
	var buf bytes.Buffer
	buf.WriteString("*filter\n:" + Chain + " - [0:0]\n")
	for _, l := range lines {
		buf.WriteString("-A " + Chain + " " + l + "\n")
	}
	jump = writeJump(&buf, t, lay, len(lines) == 0)
	buf.WriteString("COMMIT\n")
	return buf.Bytes(), jump
}

// writeJump deletes the jumps that cannot stay (every jump with matches of
// its own, and mailfw's jump when it is misplaced or doubled) and inserts
// the one that should be, or, when the chain goes, deletes every jump and
// the chain. The chain stays, empty, while rules outside INPUT jump to it,
// since the kernel refuses to delete a chain in use. Deletions name the
// rule, never its number. It returns what it did, for the log.
func writeJump(buf *bytes.Buffer, t *table, lay layout, teardown bool) string {
	if !teardown && lay.settled() {
		return fmt.Sprintf("stays at %d", lay.jumps[0]+1)
	}
	input := t.rules["INPUT"]
	gone := slices.Sorted(slices.Values(slices.Concat(lay.jumps, lay.badJumps)))
	for _, i := range gone {
		buf.WriteString("-D INPUT " + input[i].spec() + "\n")
	}
	switch {
	case teardown && len(lay.refs) > 0:
		return fmt.Sprintf("removed; the empty chain stays for %d rule(s) outside INPUT that jump to it",
			len(lay.refs))
	case teardown:
		buf.WriteString("-X " + Chain + "\n")
		return "removed with the chain"
	case lay.catchAll >= 0:
		pos := lay.catchAll + 1
		for _, i := range gone {
			if i < lay.catchAll {
				pos--
			}
		}
		fmt.Fprintf(buf, "-I INPUT %d %s\n", pos, joinArgs(jumpArgs))
		return fmt.Sprintf("inserted at %d, before the catch-all", pos)
	}
	buf.WriteString("-A INPUT " + joinArgs(jumpArgs) + "\n")
	return "appended to INPUT (no catch-all)"
}
