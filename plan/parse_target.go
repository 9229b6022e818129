package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// targetKeys are the keys each target type accepts besides name and type.
var targetKeys = map[string][]string{
	"auto":      {},
	"iptables":  {},
	"ufw":       {"enable"},
	"firewalld": {"zone"},
	"aws":       {"region", "regions", "security_groups", "select", "profile", "endpoint", "quota"},
	"alibaba":   {"region", "security_groups", "select", "profile", "endpoint", "priority", "quota"},
}

var (
	awsGroupID = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	aliGroupID = regexp.MustCompile(`^sg-[0-9a-z]{6,40}$`)
	regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+$`)
	targetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

func (ps *parser) targets(p *Policy, n, root *yaml.Node) {
	if n == nil {
		p.Targets = []Target{{Name: "host", Type: "auto", Line: root.Line, Column: root.Column}}
		return
	}
	if n.Kind != yaml.SequenceNode {
		ps.fail(n, "targets", "expected a list of targets (- name: ..., type: ...), found %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i, item := range n.Content {
		field := fmt.Sprintf("targets[%d]", i)
		t, ok := ps.target(item, field)
		if !ok {
			continue
		}
		if line, dup := seen[t.Name]; dup {
			ps.fail(item, field+".name", "target name %q is already used on line %d; give every target its own name", t.Name, line)
			continue
		}
		seen[t.Name] = item.Line
		p.Targets = append(p.Targets, t)
	}
}

func (ps *parser) target(item *yaml.Node, field string) (Target, bool) {
	t := Target{Line: item.Line, Column: item.Column, Type: "auto"}
	if item.Kind != yaml.MappingNode {
		ps.fail(item, field, "expected a target mapping (name: ..., type: ...), found %s", kindName(item))
		return t, false
	}
	var all []string
	for _, ks := range targetKeys {
		all = append(all, ks...)
	}
	fields := ps.mapping(item, field, append([]string{"name", "type"}, dedupe(all)...))
	nameN, typeN := fields["name"], fields["type"]
	if nameN == nil || strings.TrimSpace(nameN.Value) == "" {
		ps.fail(item, field+".name", "the target has no name; add \"name: host\" or another name unique in this file")
		return t, false
	}
	t.Name = nameN.Value
	if !targetName.MatchString(t.Name) {
		ps.fail(nameN, field+".name", "%q is not a usable target name; use letters, digits, '-', '_' and '.', up to 64", t.Name)
		return t, false
	}
	if typeN != nil {
		t.Type = typeN.Value
	}
	keys, ok := targetKeys[t.Type]
	if !ok {
		ps.fail(typeN, field+".type", "unknown target type %q; use one of %s%s", t.Type,
			strings.Join(TargetTypes, ", "), suggest(t.Type, TargetTypes))
		return t, false
	}
	before := len(ps.errs)
	for k, v := range fields {
		if k == "name" || k == "type" {
			continue
		}
		if !slices.Contains(keys, k) {
			ps.fail(keyNode(item, k), field+"."+k, "%q does not apply to a target of type %s; remove it", k, t.Type)
			continue
		}
		ps.targetField(&t, k, v, field+"."+k)
	}
	if t.Type == "aws" || t.Type == "alibaba" {
		ps.checkCloudTarget(&t, item, field)
	}
	return t, len(ps.errs) == before
}

func keyNode(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return m
}

func dedupe(ss []string) []string {
	slices.Sort(ss)
	return slices.Compact(ss)
}

func (ps *parser) targetField(t *Target, key string, v *yaml.Node, field string) {
	switch key {
	case "zone", "region", "profile", "endpoint":
		if v.Kind != yaml.ScalarNode || v.Value == "" {
			ps.fail(v, field, "expected text, found %s", kindName(v))
			return
		}
		switch key {
		case "zone":
			t.Zone = v.Value
		case "region":
			t.Region = v.Value
		case "profile":
			t.Profile = v.Value
		case "endpoint":
			t.Endpoint = v.Value
		}
	case "regions":
		t.Regions = ps.stringList(v, field)
	case "security_groups":
		t.SecurityGroups = ps.stringList(v, field)
	case "priority", "quota":
		lo, hi := 1, 100
		if key == "quota" {
			hi = 10000
		}
		n, err := strconv.Atoi(v.Value)
		if err != nil || n < lo || n > hi {
			ps.fail(v, field, "%s is not valid here; use a whole number from %d to %d", kindName(v), lo, hi)
			return
		}
		if key == "priority" {
			t.Priority = n
		} else {
			t.Quota = n
		}
	case "enable":
		b, err := strconv.ParseBool(v.Value)
		if err != nil {
			ps.fail(v, field, "%s is not true or false", kindName(v))
			return
		}
		t.Enable = b
	case "select":
		t.Select = ps.selector(v, field, t.Type == "alibaba")
	}
}

func (ps *parser) stringList(v *yaml.Node, field string) []string {
	if v.Kind != yaml.SequenceNode {
		ps.fail(v, field, "expected a list, found %s; write [a, b]", kindName(v))
		return nil
	}
	var out []string
	for i, it := range v.Content {
		if it.Kind != yaml.ScalarNode || it.Value == "" {
			ps.fail(it, fmt.Sprintf("%s[%d]", field, i), "expected text, found %s", kindName(it))
			continue
		}
		out = append(out, it.Value)
	}
	return out
}

func (ps *parser) selector(v *yaml.Node, field string, vpc bool) *Select {
	keys := []string{"tags"}
	if vpc {
		keys = append(keys, "vpc_id")
	}
	fields := ps.mapping(v, field, keys)
	s := &Select{Tags: map[string]string{}}
	if tn := fields["tags"]; tn != nil {
		if tn.Kind != yaml.MappingNode {
			ps.fail(tn, field+".tags", "expected a mapping of tag keys to values, found %s", kindName(tn))
		} else {
			for i := 0; i+1 < len(tn.Content); i += 2 {
				s.Tags[tn.Content[i].Value] = tn.Content[i+1].Value
			}
		}
	}
	if vn := fields["vpc_id"]; vn != nil {
		s.VPCID = vn.Value
	}
	if len(s.Tags) == 0 && s.VPCID == "" {
		ps.fail(v, field, "select picks nothing; give tags: {key: value}")
	}
	return s
}

func (ps *parser) checkCloudTarget(t *Target, item *yaml.Node, field string) {
	regions := t.Regions
	if t.Region != "" {
		regions = append(regions, t.Region)
	}
	if len(regions) == 0 && t.Type == "alibaba" {
		// An aws target without a region takes the SDK's (AWS_REGION, the
		// profile's region), as the AWS CLI does.
		ps.fail(item, field, "an alibaba target needs a region; add \"region: cn-hangzhou\" or another region id")
	}
	for _, r := range regions {
		if !regionName.MatchString(r) {
			ps.fail(item, field, "%q is not a region name such as us-east-1 or cn-hangzhou", r)
		}
	}
	if len(t.SecurityGroups) == 0 && t.Select == nil {
		ps.fail(item, field, "the target names no security group; add security_groups: [sg-...] or select: {tags: {...}}")
	}
	shape := awsGroupID
	if t.Type == "alibaba" {
		shape = aliGroupID
	}
	for _, g := range t.SecurityGroups {
		if !shape.MatchString(g) {
			ps.fail(keyNode(item, "security_groups"), field+".security_groups",
				"%q is not an %s security group id (sg- followed by %s)", g, t.Type,
				map[bool]string{true: "8 or 17 hex digits", false: "letters and digits"}[t.Type == "aws"])
		}
	}
	if t.Type == "alibaba" && t.Priority == 0 {
		t.Priority = 1
	}
}
