package iptables

import (
	"fmt"
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

// isCatchAll reports whether r, a rule of INPUT, ends evaluation with a
// drop or reject for every source on one of the ports: a catch-all. A jump
// to a chain that itself ends in such a rule is one too.
func (t *table) isCatchAll(r *rule, ports []int, depth int) bool {
	if r.loopback || r.conditional() || r.m.src != "" || depth > 8 {
		return false
	}
	covers := false
	for _, p := range ports {
		covers = covers || r.m.coversPort(p)
	}
	if !covers {
		return false
	}
	switch r.target {
	case "DROP", "REJECT":
		return true
	case Chain, "", "ACCEPT", "RETURN":
		return false
	}
	for _, in := range t.rules[r.target] {
		if in.target == "RETURN" && !in.conditional() && in.m.isAny() {
			return false
		}
		if t.isCatchAll(in, ports, depth+1) {
			return true
		}
	}
	return false
}

// layout is where mailfw's jump stands in INPUT and where it should.
type layout struct {
	jumps    []int // indexes in INPUT of jumps to MAILFW-INPUT
	catchAll int   // index in INPUT of the first catch-all, -1 if none
}

func (t *table) layout(ports []int) layout {
	l := layout{catchAll: -1}
	for i, r := range t.rules["INPUT"] {
		if r.target == Chain {
			l.jumps = append(l.jumps, i)
			continue
		}
		if l.catchAll < 0 && t.isCatchAll(r, ports, 0) {
			l.catchAll = i
		}
	}
	return l
}

// inForce reports whether a packet can reach MAILFW-INPUT: some jump comes
// before the catch-all.
func (l layout) inForce() bool {
	return len(l.jumps) > 0 && (l.catchAll < 0 || l.jumps[0] < l.catchAll)
}

// settled reports whether the jump can stay as it is: exactly one, in force.
func (l layout) settled() bool { return len(l.jumps) == 1 && l.inForce() }

// describe says where the jump is, for State.Extra and findings.
func (l layout) describe(t *table) string {
	var jump string
	switch {
	case len(l.jumps) == 0:
		jump = "no jump"
	case l.settled():
		jump = fmt.Sprintf("jump at %d", l.jumps[0]+1)
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
