package ec2emu

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// params is a decoded Query-protocol request body.
type params map[string]string

func parseParams(v url.Values) params {
	p := make(params, len(v))
	for k, vs := range v {
		if len(vs) > 0 {
			p[k] = vs[0]
		}
	}
	return p
}

// list splits the flattened list under prefix ("IpPermissions") into its
// members, in index order. Member N holds the keys "prefix.N.rest" as
// "rest", and "prefix.N" itself as "".
func (p params) list(prefix string) []params {
	byIndex := map[int]params{}
	pre := prefix + "."
	for k, v := range p {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		rest := k[len(pre):]
		num, tail, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			continue
		}
		m := byIndex[n]
		if m == nil {
			m = params{}
			byIndex[n] = m
		}
		m[tail] = v
	}
	idx := make([]int, 0, len(byIndex))
	for n := range byIndex {
		idx = append(idx, n)
	}
	sort.Ints(idx)
	out := make([]params, len(idx))
	for i, n := range idx {
		out[i] = byIndex[n]
	}
	return out
}

// strings returns the scalar members of a flat list ("GroupId.N").
func (p params) strings(prefix string) []string {
	var out []string
	for _, m := range p.list(prefix) {
		if v, ok := m[""]; ok {
			out = append(out, v)
		}
	}
	return out
}

// filter is one Filter.N entry.
type filter struct {
	Name   string
	Values []string
}

func (p params) filters() []filter {
	var out []filter
	for _, m := range p.list("Filter") {
		out = append(out, filter{Name: m["Name"], Values: m.strings("Value")})
	}
	return out
}

// tags reads "Tag.M.Key"/"Tag.M.Value".
func (p params) tags() []Tag {
	var out []Tag
	for _, m := range p.list("Tag") {
		out = append(out, Tag{Key: m["Key"], Value: m["Value"]})
	}
	return out
}

// intParam reads an optional integer parameter.
func (p params) intParam(name string) (int, bool, error) {
	s, ok := p[name]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s)
	return n, true, err
}
