package plan

import "fmt"

// Desired expands the policy into the single-source rules it asks of
// target t, checked against what the target can express. Mistakes that only
// this target makes (a prefix list on a host firewall, a deny on a security
// group that can only allow) are errors naming the policy line.
func (p *Policy) Desired(t Target, caps Capabilities) ([]Rule, error) {
	var errs PolicyErrors
	fail := func(e Entry, field, format string, args ...any) {
		errs = append(errs, &PolicyError{File: p.File, Line: e.Line, Column: e.Column, Field: field,
			Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	var out []Rule
	expand := func(section string, i int, e Entry, v Verdict) {
		field := fmt.Sprintf("%s[%d]", section, i)
		if v == Deny && !caps.Deny {
			fail(e, field, "a target of type %s can only allow, so this deny entry cannot be enforced there; "+
				"move deny entries to a policy file without %s targets", t.Type, t.Type)
			return
		}
		desc, asWritten := e.Description, ""
		if caps.Description != nil {
			d, err := caps.Description(desc)
			if err != nil {
				fail(e, field+".description", "%v", err)
				return
			}
			if d != desc && desc != "" {
				asWritten = desc
			}
			desc = d
		}
		for _, name := range e.From {
			for _, se := range p.resolve(name) {
				if se.Family == FamilyAny && !caps.CloudRefs {
					fail(e, field+".from", "source %q holds the cloud reference %s, which a target of type %s cannot match; "+
						"use addresses for this target", name, se.Value, t.Type)
					return
				}
				r := Rule{Family: se.Family, Protocol: "tcp", Port: e.Port, Source: se.Value,
					Verdict: v, Limit: e.Limit, Description: desc, Line: e.Line,
					OneFamily: name == "anywhere-ipv4" || name == "anywhere-ipv6", AsWritten: asWritten}
				if v == Deny {
					r.Limit = nil
				}
				if seen[r.Key()] {
					continue
				}
				seen[r.Key()] = true
				out = append(out, r)
			}
		}
	}
	for i, e := range p.Deny {
		expand("deny", i, e, Deny)
	}
	for i, e := range p.Allow {
		expand("allow", i, e, Allow)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func (p *Policy) resolve(name string) []SourceEntry {
	if b, ok := builtinSources[name]; ok {
		return b
	}
	if s, ok := p.Sources[name]; ok {
		return s.Entries
	}
	// A literal address, canonicalised when the policy was parsed.
	canon, fam, err := CanonicalSource(name)
	if err != nil {
		return nil
	}
	return []SourceEntry{{Value: canon, Family: fam}}
}
