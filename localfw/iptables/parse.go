package iptables

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// table is the filter table of one family as iptables-save prints it.
type table struct {
	family   plan.Family
	policies map[string]string // built-in chain -> ACCEPT or DROP
	chains   map[string]bool   // every declared chain
	rules    map[string][]*rule
}

func newTable(f plan.Family) *table {
	return &table{family: f, policies: map[string]string{}, chains: map[string]bool{},
		rules: map[string][]*rule{}}
}

// parseSave reads the *filter section of iptables-save output. Other tables
// are skipped. Output with no filter section is an empty table whose
// built-in chains accept.
func parseSave(data []byte, f plan.Family) (*table, error) {
	t := newTable(f)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	current, n := "", 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		switch {
		case line[0] == '*':
			current = line[1:]
		case line == "COMMIT":
			current = ""
		case current != "filter":
		case line[0] == ':':
			fields := strings.Fields(line[1:])
			if len(fields) < 2 {
				return nil, fmt.Errorf("line %d: bad chain line %q", n, line)
			}
			t.chains[fields[0]] = true
			if fields[1] != "-" {
				t.policies[fields[0]] = fields[1]
			}
		case strings.HasPrefix(line, "-A "):
			args, err := splitArgs(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if len(args) < 2 {
				return nil, fmt.Errorf("line %d: rule without a chain", n)
			}
			r := parseRule(args[1], args[2:])
			r.idx = len(t.rules[r.chain])
			t.rules[r.chain] = append(t.rules[r.chain], r)
		default:
			return nil, fmt.Errorf("line %d: unexpected %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading iptables-save output: %w", err)
	}
	if _, ok := t.policies["INPUT"]; !ok {
		t.policies["INPUT"] = "ACCEPT"
	}
	return t, nil
}

// countRules counts the rules of every table in iptables-save output; mode
// detection uses it.
func countRules(data []byte) int {
	n := 0
	for line := range bytes.Lines(data) {
		if bytes.HasPrefix(line, []byte("-A ")) {
			n++
		}
	}
	return n
}

// splitArgs splits one iptables-save line into words the way
// iptables-restore does: double quotes group, a backslash escapes the next
// character. The special characters are ASCII, so working on bytes keeps
// UTF-8 intact.
func splitArgs(line string) ([]string, error) {
	if !strings.ContainsAny(line, "\"\\") {
		return strings.Fields(line), nil
	}
	var args []string
	cur := make([]byte, 0, len(line))
	inWord, quoted, escaped := false, false, false
	for i := range len(line) {
		c := line[i]
		switch {
		case escaped:
			cur = append(cur, c)
			escaped = false
		case c == '\\':
			escaped, inWord = true, true
		case c == '"':
			quoted, inWord = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				args = append(args, string(cur))
				cur = cur[:0]
				inWord = false
			}
		default:
			cur = append(cur, c)
			inWord = true
		}
	}
	if quoted || escaped {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inWord {
		args = append(args, string(cur))
	}
	return args, nil
}

// quoteArg quotes a word for iptables-restore when it needs it: in double
// quotes with '"', '\' and '\” escaped, as iptables-save writes comments.
// Words of plain ASCII letters, digits and address punctuation stay bare.
func quoteArg(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' || r == '\'' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

const safeChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=+@%!"

var safeSet = func() (set [256]bool) {
	for i := range len(safeChars) {
		set[safeChars[i]] = true
	}
	return set
}()

func isSafe(s string) bool {
	for i := range len(s) {
		if !safeSet[s[i]] {
			return false
		}
	}
	return s != ""
}

// joinArgs renders words as one iptables-restore line fragment.
func joinArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quoteArg(a)
	}
	return strings.Join(q, " ")
}

// portRange is an inclusive range of ports.
type portRange struct{ from, to int }

// match is what a rule (or a chain of jumps) selects, as far as mailfw
// models it.
type match struct {
	src      string // canonical CIDR; "" for any source
	srcNeg   bool
	srcOther bool   // the source is restricted in a way mailfw cannot express
	proto    string // "" for any protocol
	protoNeg bool
	ports    []portRange // nil for every port
	portsNeg bool
}

// condKind sorts the matches mailfw does not model by what they mean for
// the jump's placement.
type condKind int

const (
	// condSelector selects packets by something every source can send: an
	// interface, a destination, a conntrack state, TCP flags.
	condSelector condKind = iota
	// condSource restricts the source in a way mailfw cannot express: an
	// ipset, an address range, a recent list, a MAC address.
	condSource
	// condOther is anything else: a rate, a payload match, an unknown module.
	condOther
)

// cond is one match mailfw does not model.
type cond struct {
	kind condKind
	text string
}

// rule is one iptables rule and what mailfw makes of it.
type rule struct {
	chain string
	idx   int      // position in the chain, from 0
	args  []string // the words after "-A CHAIN", unquoted

	specText string // cache of spec()

	m          match
	target     string // -j or -g target; "" when the rule only counts
	isGoto     bool
	rejectWith string
	comment    string
	hasComment bool
	connlimit  int // --connlimit-above N, 0 when absent
	limitMask  int
	loopback   bool   // -i lo: traffic from the host itself
	conds      []cond // matches mailfw does not model
	// noNew is true when the rule can never match the first packet of a
	// new TCP connection (a conntrack state without NEW, TCP flags a SYN
	// does not have): it neither opens nor closes a mail port.
	noNew bool
	// notMail is true when the rule selects only traffic no mail sender
	// can send to the host: to a loopback destination, or broadcast and
	// multicast packets. Placement ignores it.
	notMail bool
}

// conditional reports whether the rule matches only some of the packets
// its source, protocol and ports say: it has matches mailfw does not model,
// a negation, or a connection limit.
func (r *rule) conditional() bool { return r.unmodelledMatches() || r.connlimit > 0 }

func (r *rule) unmodelledMatches() bool {
	return len(r.conds) > 0 || r.m.srcNeg || r.m.protoNeg || r.m.portsNeg || r.m.srcOther
}

// anySource reports whether every source can match r: it has no source
// restriction, no connection limit and no matches other than selectors.
func (r *rule) anySource() bool {
	if r.m.src != "" || r.m.srcNeg || r.m.srcOther || r.connlimit > 0 || r.loopback {
		return false
	}
	for _, c := range r.conds {
		if c.kind != condSelector {
			return false
		}
	}
	return true
}

func (r *rule) addCond(k condKind, text string) {
	r.conds = append(r.conds, cond{kind: k, text: text})
	if k == condSource {
		r.m.srcOther = true
	}
}

// spec is the rule as iptables-restore takes it after "-A CHAIN".
func (r *rule) spec() string {
	if r.specText == "" {
		r.specText = joinArgs(r.args)
	}
	return r.specText
}

// optionModules are the -m modules whose options parseRule reads one by
// one; any other module is one condition of the kind moduleKinds gives
// (condOther when not listed).
var optionModules = map[string]bool{
	"tcp": true, "udp": true, "multiport": true, "comment": true, "connlimit": true,
	"conntrack": true, "state": true, "set": true, "iprange": true, "addrtype": true, "geoip": true,
	"pkttype": true,
}

var moduleKinds = map[string]condKind{
	"physdev": condSelector, "recent": condSource, "mac": condSource,
}

// optionKinds are the module options that select by source or by
// something every source can send; other options are condOther.
var optionKinds = map[string]condKind{
	"--src-range": condSource, "--src-type": condSource, "--src-cc": condSource,
	"--source-country": condSource, "--ctorigsrc": condSource, "--ctreplsrc": condSource,
	"--dst-range": condSelector, "--dst-type": condSelector, "--dst-cc": condSelector,
	"--destination-country": condSelector, "--limit-iface-in": condSelector, "--pkt-type": condSelector,
}

// parseRule interprets the words of one rule. It never fails: what it does
// not understand makes the rule conditional.
func parseRule(chain string, args []string) *rule {
	r := &rule{chain: chain, args: args}
	neg, mod := false, ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "!" {
			neg = true
			continue
		}
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch a {
		case "-s", "--source":
			r.setSource(next(), neg)
		case "-p", "--protocol":
			r.m.proto, r.m.protoNeg = strings.ToLower(next()), neg
		case "-i", "--in-interface":
			if v := next(); v == "lo" && !neg {
				r.loopback = true
			} else {
				r.addCond(condSelector, negText(neg, "-i "+v))
			}
		case "-d", "--destination":
			v := next()
			r.addCond(condSelector, negText(neg, "-d "+v))
			if p, err := netip.ParsePrefix(v); err == nil && !neg && p.Addr().IsLoopback() {
				r.notMail = true
			}
		case "-m", "--match":
			if mod = next(); !optionModules[mod] {
				k, ok := moduleKinds[mod]
				if !ok {
					k = condOther
				}
				r.addCond(k, "-m "+mod)
			}
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			r.setPorts(next(), neg)
		case "--comment":
			r.comment, r.hasComment = next(), true
		case "--connlimit-above":
			r.connlimit, _ = strconv.Atoi(next())
		case "--connlimit-mask":
			r.limitMask, _ = strconv.Atoi(next())
		case "--connlimit-saddr":
		case "-j", "--jump", "-g", "--goto":
			r.target, r.isGoto = next(), a == "-g" || a == "--goto"
			r.targetOptions(args[i+1:])
			return r
		default:
			// A core option or a match option mailfw does not model; its
			// arguments, if any, are the words up to the next option.
			var vals []string
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && args[i+1] != "!" {
				i++
				vals = append(vals, args[i])
			}
			r.option(mod, a, vals, neg)
		}
		neg = false
	}
	return r
}

func negText(neg bool, s string) string {
	if neg {
		return "! " + s
	}
	return s
}

// option records a match option mailfw does not model as a condition.
func (r *rule) option(mod, opt string, vals []string, neg bool) {
	text := negText(neg, strings.Join(append([]string{opt}, vals...), " "))
	switch {
	case mod != "" && !optionModules[mod]:
		// The module itself is the condition, recorded at -m.
	case opt == "--ctstate" || opt == "--state":
		r.setStates(vals, neg, text)
	case opt == "--syn":
		r.setFlags("FIN,SYN,RST,ACK", "SYN", neg, text)
	case opt == "--tcp-flags" && len(vals) == 2:
		r.setFlags(vals[0], vals[1], neg, text)
	case opt == "--match-set" && len(vals) == 2 && !strings.HasPrefix(vals[1], "src"):
		r.addCond(condSelector, text)
	case opt == "--match-set":
		r.addCond(condSource, text)
	case (opt == "--pkt-type" || opt == "--dst-type") && !neg && len(vals) == 1 && notUnicast[strings.ToUpper(vals[0])]:
		r.notMail = true
		r.addCond(condSelector, text)
	default:
		k, ok := optionKinds[opt]
		if !ok {
			k = condOther
		}
		r.addCond(k, text)
	}
}

// notUnicast are the packet and address types (pkttype, addrtype) that
// no TCP connection uses.
var notUnicast = map[string]bool{"BROADCAST": true, "MULTICAST": true}

// setStates reads a conntrack state list. A state match that lets NEW
// through is no condition on new connections; one that lets neither NEW
// nor UNTRACKED through means the rule never sees a new connection.
func (r *rule) setStates(vals []string, neg bool, text string) {
	states := map[string]bool{}
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			states[strings.ToUpper(s)] = true
		}
	}
	isNew, untracked := states["NEW"] != neg, states["UNTRACKED"] != neg
	switch {
	case isNew:
	case untracked:
		r.addCond(condSelector, text)
	default:
		r.noNew = true
		r.addCond(condSelector, text)
	}
}

// tcpFlagBits are the TCP flags by the names iptables uses.
var tcpFlagBits = map[string]int{"FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32,
	"ECE": 64, "CWR": 128, "ALL": 255, "NONE": 0}

func flagBits(s string) (int, bool) {
	bits := 0
	for _, f := range strings.Split(s, ",") {
		b, ok := tcpFlagBits[strings.ToUpper(f)]
		if !ok {
			return 0, false
		}
		bits |= b
	}
	return bits, true
}

// setFlags reads "--tcp-flags mask comp": a condition, and the rule never
// sees a new connection when a bare SYN does not match it.
func (r *rule) setFlags(maskS, compS string, neg bool, text string) {
	r.addCond(condSelector, text)
	mask, ok1 := flagBits(maskS)
	comp, ok2 := flagBits(compS)
	if !ok1 || !ok2 {
		return
	}
	const syn = 2
	if (mask&syn == comp) == neg {
		r.noNew = true
	}
}

// setSource reads -s. A source plan.CanonicalSource refuses but netip
// reads (an IPv4-mapped IPv6 prefix) is kept as netip prints it; one
// nothing reads restricts the source in an unknown way, and never becomes
// "anywhere".
func (r *rule) setSource(v string, neg bool) {
	canon, fam, err := plan.CanonicalSource(v)
	if err != nil || fam == plan.FamilyAny {
		p, perr := netip.ParsePrefix(v)
		if perr != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil || a.Zone() != "" {
				r.addCond(condSource, negText(neg, "-s "+v))
				return
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		canon = p.Masked().String()
	}
	if canon != "0.0.0.0/0" && canon != "::/0" {
		r.m.src = canon
	}
	r.m.srcNeg = neg
}

func (r *rule) setPorts(v string, neg bool) {
	ports, err := parsePorts(v)
	if err != nil {
		r.addCond(condOther, negText(neg, "--dport "+v))
		return
	}
	r.m.ports, r.m.portsNeg = ports, neg
}

func (r *rule) targetOptions(opts []string) {
	for i := 0; i < len(opts); i++ {
		if opts[i] == "--reject-with" && i+1 < len(opts) {
			r.rejectWith = opts[i+1]
			i++
		}
	}
}

// parsePorts reads "25", "1000:2000", ":1024", "1024:" and multiport lists
// such as "25,465,1000:1010".
func parsePorts(v string) ([]portRange, error) {
	var out []portRange
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		if !isRange {
			hi = lo
		}
		from, to := 0, 65535
		var err error
		if lo != "" {
			if from, err = strconv.Atoi(lo); err != nil {
				return nil, fmt.Errorf("bad port %q", part)
			}
		}
		if hi != "" {
			if to, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("bad port %q", part)
			}
		}
		if from > to || to > 65535 || from < 0 {
			return nil, fmt.Errorf("bad port range %q", part)
		}
		out = append(out, portRange{max(from, 1), to})
	}
	return out, nil
}

// combine is what a packet must match to pass both a and b (a jump and a
// rule in the chain it jumps to). ok is false when no packet can.
func combine(a, b match) (match, bool) {
	out := match{srcNeg: a.srcNeg || b.srcNeg, srcOther: a.srcOther || b.srcOther,
		protoNeg: a.protoNeg || b.protoNeg, portsNeg: a.portsNeg || b.portsNeg}
	switch {
	case a.src == "":
		out.src = b.src
	case b.src == "" || plan.SourceContains(b.src, a.src):
		out.src = a.src
	case plan.SourceContains(a.src, b.src):
		out.src = b.src
	default:
		return match{}, false
	}
	switch {
	case a.proto == "" || a.proto == "all":
		out.proto = b.proto
	case b.proto == "" || b.proto == "all" || a.proto == b.proto:
		out.proto = a.proto
	default:
		return match{}, false
	}
	switch {
	case a.ports == nil:
		out.ports = b.ports
	case b.ports == nil:
		out.ports = a.ports
	default:
		for _, x := range a.ports {
			for _, y := range b.ports {
				if lo, hi := max(x.from, y.from), min(x.to, y.to); lo <= hi {
					out.ports = append(out.ports, portRange{lo, hi})
				}
			}
		}
		if out.ports == nil {
			return match{}, false
		}
	}
	return out, true
}

// isAny reports whether m matches every packet.
func (m match) isAny() bool {
	return m.src == "" && (m.proto == "" || m.proto == "all") && m.ports == nil &&
		!m.srcNeg && !m.srcOther && !m.protoNeg && !m.portsNeg
}

// coversPort reports whether m can match TCP traffic to port p, negations
// included.
func (m match) coversPort(p int) bool {
	isTCP := m.proto == "" || m.proto == "all" || m.proto == "tcp" || m.proto == "6"
	if isTCP == m.protoNeg {
		return false
	}
	if m.ports == nil {
		return !m.portsNeg
	}
	in := false
	for _, r := range m.ports {
		in = in || (r.from <= p && p <= r.to)
	}
	return in != m.portsNeg
}

// coversAny reports whether m can match TCP traffic to one of ports.
func (m match) coversAny(ports []int) bool {
	for _, p := range ports {
		if m.coversPort(p) {
			return true
		}
	}
	return false
}

// prefixLess orders canonical CIDRs by address, then by length.
func prefixLess(a, b string) int {
	pa, errA := netip.ParsePrefix(a)
	pb, errB := netip.ParsePrefix(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	if c := pa.Addr().Compare(pb.Addr()); c != 0 {
		return c
	}
	return pa.Bits() - pb.Bits()
}
