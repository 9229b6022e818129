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
	proto    string // "" for any protocol
	protoNeg bool
	ports    []portRange // nil for every port
	portsNeg bool
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
	loopback   bool     // -i lo: traffic from the host itself
	unmodelled []string // matches mailfw does not model
}

// conditional reports whether the rule matches only some of the packets
// its source, protocol and ports say: it has matches mailfw does not model,
// a negation, or a connection limit.
func (r *rule) conditional() bool { return r.unmodelledMatches() || r.connlimit > 0 }

func (r *rule) unmodelledMatches() bool {
	return len(r.unmodelled) > 0 || r.m.srcNeg || r.m.protoNeg || r.m.portsNeg
}

// spec is the rule as iptables-restore takes it after "-A CHAIN".
func (r *rule) spec() string {
	if r.specText == "" {
		r.specText = joinArgs(r.args)
	}
	return r.specText
}

// modelledMatches are the -m modules whose options mailfw understands.
var modelledMatches = map[string]bool{
	"tcp": true, "udp": true, "multiport": true, "comment": true, "connlimit": true,
}

// parseRule interprets the words of one rule. It never fails: what it does
// not understand makes the rule conditional.
func parseRule(chain string, args []string) *rule {
	r := &rule{chain: chain, args: args}
	neg := false
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
				r.unmodelled = append(r.unmodelled, "-i "+v)
			}
		case "-m", "--match":
			if mod := next(); !modelledMatches[mod] {
				r.unmodelled = append(r.unmodelled, "-m "+mod)
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
			r.unmodelled = append(r.unmodelled, a)
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && args[i+1] != "!" {
				i++
			}
		}
		neg = false
	}
	return r
}

func (r *rule) setSource(v string, neg bool) {
	canon, fam, err := plan.CanonicalSource(v)
	if err != nil || fam == plan.FamilyAny {
		r.unmodelled = append(r.unmodelled, "-s "+v)
		return
	}
	if canon != "0.0.0.0/0" && canon != "::/0" {
		r.m.src = canon
	}
	r.m.srcNeg = neg
}

func (r *rule) setPorts(v string, neg bool) {
	ports, err := parsePorts(v)
	if err != nil {
		r.unmodelled = append(r.unmodelled, "--dport "+v)
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
	out := match{srcNeg: a.srcNeg || b.srcNeg, protoNeg: a.protoNeg || b.protoNeg,
		portsNeg: a.portsNeg || b.portsNeg}
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
		!m.srcNeg && !m.protoNeg && !m.portsNeg
}

// coversPort reports whether m can match TCP traffic to port p.
func (m match) coversPort(p int) bool {
	if m.proto != "" && m.proto != "all" && m.proto != "tcp" && m.proto != "6" {
		return false
	}
	if m.ports == nil {
		return true
	}
	for _, r := range m.ports {
		if r.from <= p && p <= r.to {
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
