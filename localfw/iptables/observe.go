package iptables

import (
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// view is one family's filter table seen the way the diff needs it.
type view struct {
	t        *table
	foreign  []*rule
	entries  []*entry
	byNative map[*rule]*entry
	lay      layout
	// before is how many INPUT rules a packet meets before mailfw's chain
	// (where the jump is, or where apply will put it).
	before int
}

func newView(t *table, extraPorts ...plan.Rule) *view {
	v := &view{t: t, byNative: map[*rule]*entry{}}
	v.foreign, v.entries = t.chainContents()
	for _, e := range v.entries {
		for _, r := range e.native {
			v.byNative[r] = e
		}
	}
	v.lay = t.layout(mailPortsOf(v.entries, extraPorts...))
	pos := v.blockPos()
	for i, r := range t.rules["INPUT"] {
		if i < pos && r.target != Chain {
			v.before++
		}
	}
	return v
}

// blockPos is the INPUT index mailfw's chain is evaluated at: the jump in
// force, else the catch-all the jump will be put before, else the end.
func (v *view) blockPos() int {
	switch {
	case v.lay.inForce():
		return v.lay.jumps[0]
	case v.lay.catchAll >= 0:
		return v.lay.catchAll
	}
	return len(v.t.rules["INPUT"])
}

// orderStep is the spacing of INPUT rules in Observed.Order: room for every
// rule of the table inside one step.
func orderStep(tables ...*table) int {
	total := 0
	for _, t := range tables {
		for _, rs := range t.rules {
			total += len(rs)
		}
	}
	step := 10000
	for total+2 >= step {
		step *= 10
	}
	return step
}

// observe flattens INPUT, the chains it jumps to and mailfw's chain into
// Observed rules, with mailfw's chain at slot j (j*step + 1 + k for its
// k-th rule) and INPUT rule slots counted around it.
func (v *view) observe(j, step int) []plan.Observed {
	w := &walker{v: v, step: step}
	pos, slot := v.blockPos(), 0
	block := func() {
		c := 0
		w.walk(Chain, match{}, !v.lay.inForce(), j*step, &c, 0)
		slot = j
	}
	for i, r := range v.t.rules["INPUT"] {
		if i == pos {
			block()
		}
		if r.target == Chain || r.loopback {
			continue
		}
		slot++
		w.top(r, slot*step)
	}
	if pos == len(v.t.rules["INPUT"]) {
		block()
	}
	return w.out
}

type walker struct {
	v    *view
	step int
	out  []plan.Observed
	// inBans counts the ban chains of other tools the walk is inside.
	inBans int
}

// banChainPrefixes name the chains of tools that add and lift bans all the
// time: fail2ban ("f2b-sshd", formerly "fail2ban-sshd"), sshguard and
// CrowdSec's bouncer ("CROWDSEC_CHAIN").
var banChainPrefixes = []string{"f2b-", "fail2ban-", "sshguard", "crowdsec"}

func isBanChain(name string) bool {
	name = strings.ToLower(name)
	for _, p := range banChainPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// top handles one INPUT rule at the given order.
func (w *walker) top(r *rule, order int) {
	if r.noNew {
		return
	}
	if w.isChain(r.target) {
		c := 0
		w.walk(r.target, r.m, r.conditional(), order, &c, 0)
		return
	}
	w.emit(r, r.m, r.conditional(), order, "INPUT")
}

func (w *walker) isChain(name string) bool {
	return name != Chain && w.v.t.chains[name] && w.v.t.policies[name] == ""
}

// walk flattens chain as reached through a jump matching outer.
func (w *walker) walk(chain string, outer match, cond bool, base int, k *int, depth int) {
	if depth > 8 {
		return
	}
	if isBanChain(chain) {
		w.inBans++
		defer func() { w.inBans-- }()
	}
	afterReturn := false
	for _, r := range w.v.t.rules[chain] {
		*k++
		order := base + *k
		if e := w.v.byNative[r]; e != nil && chain == Chain {
			if r == e.native[len(e.native)-1] {
				w.emitOwned(e, cond, order)
			}
			continue
		}
		if r.loopback || r.noNew {
			continue
		}
		m, ok := combine(outer, r.m)
		if !ok {
			continue
		}
		c := cond || afterReturn || r.conditional()
		if r.target == "RETURN" {
			if r.m.isAny() && !r.conditional() {
				return
			}
			afterReturn = true
			continue
		}
		if w.isChain(r.target) {
			w.walk(r.target, m, c, base, k, depth+1)
			continue
		}
		w.emit(r, m, c, order, "chain "+chain)
	}
}

// emit adds the Observed rules a rule with verdict stands for, one per
// port range. Rules that never see a new connection, rules whose source
// mailfw cannot express, and protocols other than TCP and UDP are left out.
func (w *walker) emit(r *rule, m match, cond bool, order int, origin string) int {
	var verdict plan.Verdict
	switch r.target {
	case "ACCEPT":
		verdict = plan.Allow
	case "DROP", "REJECT":
		verdict = plan.Deny
	default:
		return 0
	}
	if r.noNew || m.srcOther {
		return 0
	}
	proto, ports, ok := observedPorts(m)
	if !ok {
		return 0
	}
	src := m.src
	if src == "" || m.srcNeg {
		// "! -s X" matches every source but X: the world, under a
		// condition (cond is set), not X.
		src = plan.World(w.v.t.family)
	}
	for _, p := range ports {
		w.out = append(w.out, plan.Observed{
			ID:     string(w.v.t.family) + " " + r.chain + ": " + r.spec(),
			Family: w.v.t.family, Protocol: proto, PortFrom: p.from, PortTo: p.to,
			Source: src, Verdict: verdict, Description: r.comment,
			Order: order, Conditional: cond, Fixed: true, Volatile: w.inBans > 0, Origin: origin,
		})
	}
	return len(ports)
}

// observedPorts is the protocol and port ranges m stands for in Observed
// rules; ok is false for protocols other than TCP, UDP and all.
func observedPorts(m match) (proto string, ports []portRange, ok bool) {
	proto = m.proto
	switch proto {
	case "", "all":
		proto = "all"
	case "tcp", "udp":
	default:
		return "", nil, false
	}
	ports = m.ports
	if ports == nil || proto == "all" {
		ports = []portRange{{1, 65535}}
	}
	return proto, ports, true
}

// emitOwned adds the Observed rule for one of mailfw's entries. An entry
// not in mailfw's own form is reported conditional, so the diff replaces it.
func (w *walker) emitOwned(e *entry, cond bool, order int) {
	origin := "chain " + Chain
	if cond {
		origin += " (not reached from INPUT as mailfw means)"
	}
	if e.ok {
		w.out = append(w.out, plan.Observed{
			ID: e.id, Family: e.rule.Family, Protocol: "tcp",
			PortFrom: e.rule.Port, PortTo: e.rule.Port, Source: e.rule.Source,
			Verdict: e.rule.Verdict, Limit: e.rule.Limit, Owned: true,
			Description: e.rule.Description, Order: order, Conditional: cond, Origin: origin,
		})
		return
	}
	w.emitForeignForm(e, order, origin)
}

// emitForeignForm reports a marked rule mailfw did not write in its own
// form as what it is: its protocol, ports and source, and its verdict or,
// for a target that decides nothing (LOG), the target's name, so the plan
// can remove it without calling it a deny.
func (w *walker) emitForeignForm(e *entry, order int, origin string) {
	r := e.native[len(e.native)-1]
	desc, _ := parseMark(r.comment)
	proto, ports, ok := observedPorts(r.m)
	if !ok {
		proto, ports = "all", []portRange{{1, 65535}}
	}
	src := r.m.src
	if src == "" {
		src = plan.World(w.v.t.family)
	}
	var verdict plan.Verdict
	switch r.target {
	case "ACCEPT":
		verdict = plan.Allow
	case "DROP", "REJECT":
		verdict = plan.Deny
	case "":
		verdict = "count"
	default:
		verdict = plan.Verdict(strings.ToLower(r.target))
	}
	for _, p := range ports {
		w.out = append(w.out, plan.Observed{ID: e.id, Family: w.v.t.family, Protocol: proto,
			PortFrom: p.from, PortTo: p.to, Source: src, Verdict: verdict, Owned: true,
			Description: desc, Order: order, Conditional: true, Origin: origin})
	}
}
