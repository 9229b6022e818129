package iptables

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// Chain is the chain mailfw owns in the filter table of each family.
const Chain = "MAILFW-INPUT"

// Mark starts the comment of every rule mailfw writes.
const Mark = "mailfw"

// ScopeID is the one scope this backend reports.
const ScopeID = "INPUT"

// maxComment is the longest comment the kernel's comment match stores
// (XT_MAX_COMMENT_LEN, 256 bytes with the terminating NUL); iptables cuts
// longer ones silently.
const maxComment = 255

// parseMark returns the description a comment carries after mailfw's mark.
func parseMark(c string) (string, bool) {
	if c == Mark {
		return "", true
	}
	if rest, ok := strings.CutPrefix(c, Mark+":"); ok {
		return strings.TrimSpace(rest), true
	}
	return "", false
}

// markComment is the comment mailfw writes for a description.
func markComment(desc string) string {
	if desc == "" {
		return Mark
	}
	return Mark + ": " + desc
}

// entry is one rule in MAILFW-INPUT that carries the mark. A rule with a
// connection limit is two native rules: the connlimit REJECT and the allow.
type entry struct {
	id     string
	rule   plan.Rule // meaningful only when ok
	ok     bool      // in the form mailfw writes
	native []*rule
}

// chainContents splits MAILFW-INPUT into rules others put there and
// mailfw's own entries, pairing each connlimit rule with the allow after it.
func (t *table) chainContents() (foreign []*rule, entries []*entry) {
	var limits []*rule
	for _, r := range t.rules[Chain] {
		desc, marked := parseMark(r.comment)
		if !marked || !r.hasComment {
			foreign = append(foreign, r)
			continue
		}
		pr, kind := t.ownForm(r, desc)
		switch kind {
		case "limit":
			limits = append(limits, r)
		case "":
			entries = append(entries, &entry{native: []*rule{r}})
		default:
			entries = append(entries, &entry{rule: pr, ok: true, native: []*rule{r}})
		}
	}
	pairs := allowsBySourcePort(entries)
	for _, l := range limits {
		if e := pairs.take(l); e != nil {
			e.rule.Limit = &plan.Limit{ConnectionsPerSource: l.connlimit}
			e.native = []*rule{l, e.native[0]}
			continue
		}
		entries = append(entries, &entry{native: []*rule{l}})
	}
	for _, e := range entries {
		specs := make([]string, len(e.native))
		for i, r := range e.native {
			specs[i] = r.spec()
		}
		e.id = string(t.family) + ": " + strings.Join(specs, " ; ")
	}
	return foreign, entries
}

// allowIndex holds mailfw's unlimited allows by source and port, in chain
// order, for pairing them with connlimit rules.
type allowIndex map[string][]*entry

func allowsBySourcePort(entries []*entry) allowIndex {
	idx := allowIndex{}
	for _, e := range entries {
		if e.ok && e.rule.Verdict == plan.Allow {
			k := e.native[0].m.src + "|" + strconv.Itoa(e.rule.Port)
			idx[k] = append(idx[k], e)
		}
	}
	return idx
}

// take returns the allow a connlimit rule l guards, the first unpaired one
// after it with the same source and port, and marks it paired.
func (idx allowIndex) take(l *rule) *entry {
	k := l.m.src + "|" + strconv.Itoa(l.m.ports[0].from)
	for i, e := range idx[k] {
		if e.native[0].idx > l.idx {
			idx[k] = append(idx[k][:i:i], idx[k][i+1:]...)
			return e
		}
	}
	return nil
}

// ownForm returns the rule r is in mailfw's own form and its kind
// ("allow", "deny", "limit"), or kind "" when r is not in that form.
func (t *table) ownForm(r *rule, desc string) (plan.Rule, string) {
	if r.unmodelledMatches() || r.loopback || r.m.proto != "tcp" || len(r.m.ports) != 1 ||
		r.m.ports[0].from != r.m.ports[0].to || r.isGoto {
		return plan.Rule{}, ""
	}
	pr := plan.Rule{Family: t.family, Protocol: "tcp", Port: r.m.ports[0].from,
		Source: r.m.src, Description: desc}
	if pr.Source == "" {
		pr.Source = plan.World(t.family)
	}
	full := 32
	if t.family == plan.IPv6 {
		full = 128
	}
	switch {
	case r.target == "ACCEPT" && r.connlimit == 0:
		pr.Verdict = plan.Allow
		return pr, "allow"
	case r.target != "REJECT" && r.target != "DROP":
		return plan.Rule{}, ""
	case r.connlimit > 0 && r.limitMask == full:
		return pr, "limit"
	case r.connlimit == 0:
		pr.Verdict = plan.Deny
		return pr, "deny"
	}
	return plan.Rule{}, ""
}

// isJump reports whether r is mailfw's own jump: "-j MAILFW-INPUT" with no
// match but, at most, a comment. Any other rule that jumps to the chain
// (with a source, a port, an interface, or a goto) is not.
func (r *rule) isJump() bool {
	if r.target != Chain || r.isGoto {
		return false
	}
	rest := r.args
	if len(rest) >= 4 && rest[0] == "-m" && rest[1] == "comment" && rest[2] == "--comment" {
		rest = rest[4:]
	}
	return len(rest) == 2 && rest[0] == "-j"
}

// verdictOn is what a rule, or a jump and the chain behind it, does to new
// TCP connections to the ports the placement looks at.
type verdictOn struct {
	// ban: some sources, not all, are dropped or rejected (a fail2ban
	// chain, "-s X -j DROP", an ipset, a connection limit).
	ban bool
	// catchAll: every source is dropped or rejected, perhaps only on some
	// interface, destination, state or TCP flags: a packet that gets past
	// it has no chance to reach a later allow.
	catchAll bool
}

// judge says what r, reached with the combined matches m and through jumps
// that select every source when anySrc, does to new TCP connections to
// ports. A jump's verdict is that of the rules of its chain up to its
// catch-all or an unconditional RETURN.
func (t *table) judge(r *rule, m match, anySrc bool, ports []int, depth int) verdictOn {
	if r.loopback || r.noNew || r.notMail || depth > 8 || !m.coversAny(ports) {
		return verdictOn{}
	}
	anySrc = anySrc && r.anySource()
	switch r.target {
	case "DROP", "REJECT":
		return verdictOn{ban: !anySrc, catchAll: anySrc}
	case Chain, "", "ACCEPT", "RETURN":
		return verdictOn{}
	}
	if !t.chains[r.target] || t.policies[r.target] != "" {
		return verdictOn{} // a target such as LOG or MARK
	}
	var v verdictOn
	for _, in := range t.rules[r.target] {
		if in.target == "RETURN" && !in.noNew && !in.loopback && !in.conditional() && in.m.isAny() {
			return v
		}
		im, ok := combine(m, in.m)
		if !ok {
			continue
		}
		iv := t.judge(in, im, anySrc, ports, depth+1)
		v.ban = v.ban || iv.ban
		if iv.catchAll {
			v.catchAll = true
			return v
		}
	}
	return v
}

// layout is where mailfw's jump stands in INPUT and where it should.
type layout struct {
	jumps    []int // indexes in INPUT of mailfw's jumps
	badJumps []int // indexes in INPUT of other rules that jump to MAILFW-INPUT
	// floor is the lowest index the jump may have: just after the last ban
	// before the catch-all, so that every ban is evaluated first.
	floor    int
	catchAll int   // index in INPUT of the first catch-all, -1 if none
	blocked  []int // bans before the catch-all that end in a catch-all themselves
	// refs are the rules outside INPUT that jump to MAILFW-INPUT.
	refs []*rule
}

func (t *table) layout(ports []int) layout {
	l := layout{catchAll: -1}
	for i, r := range t.rules["INPUT"] {
		switch {
		case r.isJump():
			l.jumps = append(l.jumps, i)
			continue
		case r.target == Chain:
			l.badJumps = append(l.badJumps, i)
			continue
		case l.catchAll >= 0:
			continue
		}
		v := t.judge(r, r.m, true, ports, 0)
		switch {
		case v.ban:
			// A chain that bans some sources and then closes the port for
			// everyone keeps its bans only if mailfw's jump comes after it,
			// where mailfw's allows are dead: that is reported, not bypassed.
			l.floor = i + 1
			if v.catchAll {
				l.blocked = append(l.blocked, i)
			}
		case v.catchAll:
			l.catchAll = i
		}
	}
	for name, rs := range t.rules {
		if name == "INPUT" {
			continue
		}
		for _, r := range rs {
			if r.target == Chain {
				l.refs = append(l.refs, r)
			}
		}
	}
	slices.SortFunc(l.refs, func(a, b *rule) int {
		return cmp.Or(strings.Compare(a.chain, b.chain), a.idx-b.idx)
	})
	return l
}

// inForce reports whether new connections reach MAILFW-INPUT the way
// mailfw means: through its own jump, placed after every ban and before
// the catch-all, and through no other jump.
func (l layout) inForce() bool {
	if len(l.jumps) == 0 || len(l.badJumps) > 0 {
		return false
	}
	j := l.jumps[0]
	return j >= l.floor && (l.catchAll < 0 || j < l.catchAll)
}

// settled reports whether the jump can stay as it is: exactly one, in force.
func (l layout) settled() bool { return len(l.jumps) == 1 && l.inForce() }

// describe says where the jump is, for State.Extra and findings.
func (l layout) describe(t *table) string {
	var jump string
	switch {
	case len(l.jumps) == 0 && len(l.badJumps) > 0:
		jump = fmt.Sprintf("only a jump with extra matches at %d", l.badJumps[0]+1)
	case len(l.jumps) == 0:
		jump = "no jump"
	case l.settled():
		jump = fmt.Sprintf("jump at %d", l.jumps[0]+1)
	case len(l.badJumps) > 0:
		jump = fmt.Sprintf("jump at %d and a jump with extra matches at %d", l.jumps[0]+1, l.badJumps[0]+1)
	case l.jumps[0] < l.floor:
		jump = fmt.Sprintf("jump at %d above the ban at %d", l.jumps[0]+1, l.floor)
	case !l.inForce():
		jump = fmt.Sprintf("jump at %d after the catch-all", l.jumps[0]+1)
	default:
		jump = fmt.Sprintf("%d jumps", len(l.jumps))
	}
	ca := "no catch-all"
	if l.catchAll >= 0 {
		ca = fmt.Sprintf("catch-all at %d", l.catchAll+1)
	}
	return fmt.Sprintf("%s: policy %s, %s, %s", t.family, t.policies["INPUT"], jump, ca)
}

// mailPortsOf is the ports the catch-all test looks at: the mail ports and
// every port of mailfw's own rules.
func mailPortsOf(entries []*entry, extra ...plan.Rule) []int {
	set := map[int]bool{}
	var out []int
	addPort := func(p int) {
		if !set[p] {
			set[p] = true
			out = append(out, p)
		}
	}
	for _, p := range plan.MailPorts {
		addPort(p)
	}
	for _, e := range entries {
		if e.ok {
			addPort(e.rule.Port)
		}
	}
	for _, r := range extra {
		addPort(r.Port)
	}
	return out
}
