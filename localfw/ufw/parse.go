package ufw

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tuple is one "### tuple ###" line of ufw's user rules files: the exact
// rule ufw recorded, from which it generates the iptables lines below it.
//
// The fields follow ufw 0.36's own reader (backend_iptables._read_rules):
// action proto dport dst sport src [dapp sapp] direction[_iface], then an
// optional " comment=<hex>".
type tuple struct {
	Line      int    // line number in the file, from 1
	Key       string // the fields joined by one space, without the comment
	Action    string // allow, deny, reject or limit
	LogType   string // "", "log" or "log-all"
	Route     bool   // a "route:" rule, for forwarded traffic
	Proto     string // tcp, udp, any, or another protocol name
	DPort     string // "any", "25", "60000:61000", "25,465,587"
	Dst       string
	SPort     string
	Src       string
	DApp      string // application profile of the destination, spaces restored
	SApp      string
	Direction string // in or out
	IfaceIn   string
	IfaceOut  string
	Comment   string // decoded
}

// problem is a line of a rules file the parser could not read.
type problem struct {
	Line   int
	Text   string
	Reason string
}

const tupleMark = "### tuple ###"

// parseRules reads the tuple lines of user.rules or user6.rules. Lines it
// cannot read are returned as problems; they never stop the parse.
func parseRules(data []byte) ([]tuple, []problem) {
	var out []tuple
	var probs []problem
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, tupleMark) {
			continue
		}
		t, err := parseTuple(strings.TrimPrefix(line, tupleMark))
		if err != nil {
			probs = append(probs, problem{Line: n, Text: line, Reason: err.Error()})
			continue
		}
		t.Line = n
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		probs = append(probs, problem{Reason: fmt.Sprintf("reading rules: %v", err)})
	}
	return out, probs
}

func parseTuple(s string) (tuple, error) {
	var t tuple
	if i := strings.Index(s, " comment="); i >= 0 {
		c, err := decodeComment(strings.TrimSpace(s[i+len(" comment="):]))
		if err != nil {
			return t, err
		}
		t.Comment, s = c, s[:i]
	}
	f := strings.Fields(s)
	if len(f) < 6 || len(f) > 9 {
		return t, fmt.Errorf("tuple has %d fields, want 7 or 9", len(f))
	}
	t.Key = strings.Join(f, " ")
	if err := t.setAction(f[0]); err != nil {
		return t, err
	}
	t.Proto, t.DPort, t.Dst, t.SPort, t.Src = f[1], f[2], f[3], f[4], f[5]
	t.Direction = "in"
	if len(f) >= 8 {
		t.DApp, t.SApp = appName(f[6]), appName(f[7])
	}
	if len(f) == 7 || len(f) == 9 {
		if err := t.setIface(f[len(f)-1]); err != nil {
			return t, err
		}
	}
	return t, nil
}

func (t *tuple) setAction(a string) error {
	if r, ok := strings.CutPrefix(a, "route:"); ok {
		t.Route, a = true, r
	}
	a, t.LogType, _ = strings.Cut(a, "_")
	switch a {
	case "allow", "deny", "reject", "limit":
		t.Action = a
	default:
		return fmt.Errorf("unknown action %q", a)
	}
	switch t.LogType {
	case "", "log", "log-all":
		return nil
	}
	return fmt.Errorf("unknown log type %q", t.LogType)
}

// setIface reads "in", "out", "in_eth0", "out_eth0" or "in_eth0!out_eth1".
func (t *tuple) setIface(s string) error {
	for _, part := range strings.Split(s, "!") {
		dir, name, _ := strings.Cut(part, "_")
		switch dir {
		case "in":
			t.IfaceIn = name
		case "out":
			t.IfaceOut = name
		default:
			return fmt.Errorf("unknown direction %q", part)
		}
	}
	t.Direction, _, _ = strings.Cut(s, "_")
	return nil
}

func appName(s string) string {
	if s == "-" {
		return ""
	}
	return strings.ReplaceAll(s, "%20", " ")
}

func decodeComment(h string) (string, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return "", fmt.Errorf("comment is not hex: %w", err)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("comment is not UTF-8")
	}
	return string(b), nil
}

// portRange is an inclusive range of ports for one protocol ("any" for both).
type portRange struct {
	Proto    string
	From, To int
}

// parsePorts reads a tuple's port field: "any", "25", "60000:61000" or a
// comma list of those.
func parsePorts(s string) ([]portRange, error) {
	if s == "any" {
		return []portRange{{From: 1, To: 65535}}, nil
	}
	var out []portRange
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(item, ":")
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, err
			}
		}
		if b < a {
			return nil, fmt.Errorf("port range %q is reversed", item)
		}
		out = append(out, portRange{From: a, To: b})
	}
	return out, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// parseProfiles reads application profiles (the INI files of
// /etc/ufw/applications.d): section name -> port ranges. A "ports" value is
// specs joined by "|", each "PORTS[/PROTO]" with PORTS as in [parsePorts];
// a spec without a protocol means TCP and UDP.
func parseProfiles(data []byte) (map[string][]portRange, error) {
	out := map[string][]portRange{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) != "ports" {
				continue
			}
			prs, err := parseProfilePorts(strings.TrimSpace(v))
			if err != nil {
				return out, fmt.Errorf("profile %q: %w", section, err)
			}
			out[section] = prs
		}
	}
	return out, sc.Err()
}

func parseProfilePorts(v string) ([]portRange, error) {
	var out []portRange
	for _, spec := range strings.Split(v, "|") {
		ports, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "any"
		}
		prs, err := parsePorts(ports)
		if err != nil {
			return nil, err
		}
		for _, pr := range prs {
			pr.Proto = proto
			out = append(out, pr)
		}
	}
	return out, nil
}

// parseDefaults reads a shell-style KEY=value file such as /etc/default/ufw
// or /etc/ufw/ufw.conf; quotes around values are removed.
func parseDefaults(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out
}

// status is what "ufw status verbose" says besides the rules.
type status struct {
	Active bool
	// DefaultIncoming is "deny", "reject" or "allow"; empty when ufw is
	// inactive (it prints no defaults then).
	DefaultIncoming string
}

// parseStatus reads the header of "ufw status [verbose]".
func parseStatus(out []byte) (status, error) {
	var st status
	seen := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Status:"); ok {
			switch strings.TrimSpace(v) {
			case "active":
				st.Active, seen = true, true
			case "inactive":
				seen = true
			default:
				return st, fmt.Errorf("unknown ufw status %q", strings.TrimSpace(v))
			}
		}
		if v, ok := strings.CutPrefix(line, "Default:"); ok {
			for _, part := range strings.Split(v, ",") {
				if p, ok := strings.CutSuffix(strings.TrimSpace(part), " (incoming)"); ok {
					st.DefaultIncoming = p
				}
			}
		}
	}
	if !seen {
		return st, fmt.Errorf("no status line in ufw output %q", firstLine(out))
	}
	return st, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
