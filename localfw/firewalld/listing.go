package firewalld

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// block is one zone, policy or service as firewall-cmd lists it: a name
// line, then "  key: value value" lines, then tab-indented lines that
// belong to the key above them (rich rules, forward ports).
type block struct {
	Name   string
	Active bool
	Fields map[string][]string
}

func (b *block) one(key string) string {
	if v := b.Fields[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseBlocks parses the output of --list-all-zones, --list-all-policies,
// --info-policy or --info-service.
func parseBlocks(out string) ([]*block, error) {
	var blocks []*block
	var cur *block
	key := ""
	for n, line := range strings.Split(out, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "\t"):
			if cur == nil || key == "" {
				return nil, fmt.Errorf("line %d: %q belongs to no key", n+1, line)
			}
			cur.Fields[key] = append(cur.Fields[key], strings.TrimPrefix(line, "\t"))
		case strings.HasPrefix(line, "  "):
			if cur == nil {
				return nil, fmt.Errorf("line %d: %q comes before any name", n+1, line)
			}
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok {
				return nil, fmt.Errorf("line %d: %q has no key", n+1, line)
			}
			key = k
			cur.Fields[k] = strings.Fields(v)
		default:
			name, marks, _ := strings.Cut(strings.TrimSpace(line), " ")
			cur = &block{Name: name, Active: strings.Contains(marks, "active"),
				Fields: map[string][]string{}}
			blocks = append(blocks, cur)
			key = ""
		}
	}
	return blocks, nil
}

// byName indexes blocks by name.
func byName(bs []*block) map[string]*block {
	m := make(map[string]*block, len(bs))
	for _, b := range bs {
		m[b.Name] = b
	}
	return m
}

// portSpec is one entry of a ports list: "25/tcp", "10000-10100/tcp".
type portSpec struct {
	From, To int
	Proto    string
}

func parsePortSpec(s string) (portSpec, error) {
	ports, proto, ok := strings.Cut(s, "/")
	if !ok {
		return portSpec{}, fmt.Errorf("port %q has no protocol", s)
	}
	return parsePortRange(ports, proto)
}

func parsePortRange(ports, proto string) (portSpec, error) {
	lo, hi, isRange := strings.Cut(ports, "-")
	from, err := strconv.Atoi(lo)
	if err != nil {
		return portSpec{}, fmt.Errorf("port %q: %w", ports, err)
	}
	to := from
	if isRange {
		if to, err = strconv.Atoi(hi); err != nil {
			return portSpec{}, fmt.Errorf("port %q: %w", ports, err)
		}
	}
	if from < 1 || to > 65535 || from > to {
		return portSpec{}, fmt.Errorf("port %q out of range", ports)
	}
	return portSpec{From: from, To: to, Proto: proto}, nil
}

// view is one of firewalld's two configurations, runtime or permanent.
type view struct {
	Zones    map[string]*block
	Policies map[string]*block
	// Ipsets holds each ipset's entries under "entries"; only the apply
	// that reloads reads them.
	Ipsets map[string]*block
}

// itemKeys are the zone and policy fields an apply can carry across a
// reload, with the firewall-cmd option that sets each. masquerade is a
// yes/no switch.
var itemKeys = []struct{ key, option string }{
	{"interfaces", "interface"},
	{"sources", "source"},
	{"services", "service"},
	{"ports", "port"},
	{"protocols", "protocol"},
	{"source-ports", "source-port"},
	{"icmp-blocks", "icmp-block"},
	{"forward-ports", "forward-port"},
	{"rich rules", "rich-rule"},
	{"masquerade", "masquerade"},
	{"entries", "entry"},
}

// item is one entry of one zone or policy: a service, a port, a rich rule.
type item struct {
	Kind   string // "zone" or "policy"
	Holder string // zone or policy name
	Key    string // field of [itemKeys]
	Value  string
}

func (it item) String() string {
	return fmt.Sprintf("%s %s %s %s", it.Kind, it.Holder, optionFor(it.Key), it.Value)
}

// optionFor is the firewall-cmd option name of an item key.
func optionFor(key string) string {
	for _, k := range itemKeys {
		if k.key == key {
			return k.option
		}
	}
	return key
}

// items lists the entries of every zone and policy of v, sorted.
func (v view) items() []item {
	var out []item
	add := func(kind string, bs map[string]*block) {
		for name, b := range bs {
			for _, k := range itemKeys {
				if k.key == "masquerade" {
					if b.one("masquerade") == "yes" {
						out = append(out, item{kind, name, k.key, "yes"})
					}
					continue
				}
				for _, val := range b.Fields[k.key] {
					out = append(out, item{kind, name, k.key, val})
				}
			}
		}
	}
	add("zone", v.Zones)
	add("policy", v.Policies)
	add("ipset", v.Ipsets)
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// minus returns the items of a that b lacks.
func minus(a, b []item) []item {
	have := make(map[item]bool, len(b))
	for _, it := range b {
		have[it] = true
	}
	var out []item
	for _, it := range a {
		if !have[it] {
			out = append(out, it)
		}
	}
	return out
}
