package firewalld

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// richRule is the part of a firewalld rich rule mailfw reasons about. Text
// is the rule exactly as firewall-cmd printed it; it is what a removal
// sends back.
type richRule struct {
	Text     string
	Priority int
	Family   string // "", "ipv4" or "ipv6"

	Source    string // address or CIDR as written; "" when none
	SourceNot bool
	// SourceOther is a source mailfw does not model (ipset, mac).
	SourceOther string
	Destination bool

	// Element is the match: "port", "service", "protocol", "" for none, or
	// another element mailfw does not model ("icmp-block", "forward-port",
	// "source-port", "masquerade", "icmp-type", "tcp-mss-clamp").
	Element  string
	Port     string // "25" or "1000-2000"
	Protocol string // of a port element, or the value of a protocol element
	Service  string

	Log, Audit bool
	// Action is "accept", "reject", "drop", "mark" or "" (log only).
	Action      string
	ActionLimit string // limit value on the action, e.g. "10/m"
	RejectType  string
}

// tokenize splits a rich rule into words, keeping key="quoted value"
// together and dropping the quotes.
func tokenize(s string) ([]string, error) {
	var toks []string
	var b strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case !inQuote && (r == ' ' || r == '\t'):
			if have {
				toks = append(toks, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteRune(r)
			have = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote in rich rule %q", s)
	}
	if have {
		toks = append(toks, b.String())
	}
	return toks, nil
}

// attrs reads key=value words from toks[i:] and returns them with the
// index of the first word that is not one.
func attrs(toks []string, i int) (map[string]string, int) {
	m := map[string]string{}
	for ; i < len(toks); i++ {
		k, v, ok := strings.Cut(toks[i], "=")
		if !ok {
			break
		}
		m[k] = v
	}
	return m, i
}

var otherElements = map[string]bool{
	"icmp-block": true, "icmp-type": true, "forward-port": true, "source-port": true,
	"masquerade": true, "tcp-mss-clamp": true,
}

// parseRichRule parses one rich rule as firewall-cmd prints it.
func parseRichRule(text string) (richRule, error) {
	rr := richRule{Text: text}
	toks, err := tokenize(text)
	if err != nil {
		return rr, err
	}
	if len(toks) == 0 || toks[0] != "rule" {
		return rr, fmt.Errorf("rich rule %q does not start with \"rule\"", text)
	}
	a, i := attrs(toks, 1)
	rr.Family = a["family"]
	if p, ok := a["priority"]; ok {
		if rr.Priority, err = strconv.Atoi(p); err != nil {
			return rr, fmt.Errorf("rich rule %q: priority %q: %w", text, p, err)
		}
	}
	prev, not := "", false
	for i < len(toks) {
		word := toks[i]
		i++
		if word == "NOT" {
			not = true
			continue
		}
		if i < len(toks) && toks[i] == "NOT" {
			not = true
			i++
		}
		a, i = attrs(toks, i)
		switch {
		case word == "source":
			rr.Source, rr.SourceNot = a["address"], not
			if rr.Source == "" {
				rr.SourceOther = strings.Join(sortedAttrs(a), " ")
			}
		case word == "destination":
			rr.Destination = true
		case word == "port":
			rr.Element, rr.Port, rr.Protocol = "port", a["port"], a["protocol"]
		case word == "service":
			rr.Element, rr.Service = "service", a["name"]
		case word == "protocol":
			rr.Element, rr.Protocol = "protocol", a["value"]
		case otherElements[word]:
			rr.Element = word
		case word == "log" || word == "nflog":
			rr.Log = true
		case word == "audit":
			rr.Audit = true
		case word == "accept" || word == "reject" || word == "drop" || word == "mark":
			rr.Action, rr.RejectType = word, a["type"]
		case word == "limit":
			// A limit belongs to the word before it: the log, the audit
			// or the action.
			if prev == rr.Action && prev != "" {
				rr.ActionLimit = a["value"]
			}
		default:
			return rr, fmt.Errorf("rich rule %q: unknown word %q", text, word)
		}
		prev, not = word, false
	}
	return rr, nil
}

func sortedAttrs(a map[string]string) []string {
	out := make([]string, 0, len(a))
	for k, v := range a {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// families is the families a rule applies to.
func (rr richRule) families() []plan.Family {
	switch rr.Family {
	case "ipv4":
		return []plan.Family{plan.IPv4}
	case "ipv6":
		return []plan.Family{plan.IPv6}
	}
	if rr.Source != "" {
		if _, f, err := plan.CanonicalSource(rr.Source); err == nil {
			return []plan.Family{f}
		}
	}
	return []plan.Family{plan.IPv4, plan.IPv6}
}

// renderRule is the rich rule mailfw writes for r; firewall-cmd prints it
// back byte for byte.
func renderRule(r plan.Rule) (string, error) {
	if r.Family != plan.IPv4 && r.Family != plan.IPv6 {
		return "", fmt.Errorf("rule %s: firewalld needs an address family, not %q", r, r.Family)
	}
	if r.Protocol != "tcp" {
		return "", fmt.Errorf("rule %s: mailfw writes tcp rules only", r)
	}
	if r.Port < 1 || r.Port > 65535 {
		return "", fmt.Errorf("rule %s: port %d out of range", r, r.Port)
	}
	if r.Limit != nil {
		return "", fmt.Errorf("rule %s: %w", r, ErrLimit)
	}
	src, fam, err := plan.CanonicalSource(r.Source)
	if err != nil {
		return "", fmt.Errorf("rule %s: %w", r, err)
	}
	if fam != r.Family {
		return "", fmt.Errorf("rule %s: source %s is not %s", r, r.Source, r.Family)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `rule family="%s"`, r.Family)
	if src != plan.World(r.Family) {
		fmt.Fprintf(&b, ` source address="%s"`, src)
	}
	fmt.Fprintf(&b, ` port port="%d" protocol="tcp" `, r.Port)
	switch r.Verdict {
	case plan.Allow:
		b.WriteString("accept")
	case plan.Deny:
		b.WriteString("reject")
	default:
		return "", fmt.Errorf("rule %s: unknown verdict %q", r, r.Verdict)
	}
	return b.String(), nil
}
