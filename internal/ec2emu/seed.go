package ec2emu

import (
	"fmt"
	"slices"
)

// SeedGroup stores a group in region, with the default egress rule a new
// group gets, and returns it with its generated fields filled in. It panics
// on a malformed or repeated id, which is a mistake in the test.
func (s *Server) SeedGroup(region string, g Group) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg := s.region(region)
	if g.ID != "" && (!groupIDPattern.MatchString(g.ID) || rg.groupByID[g.ID] != nil) {
		panic(fmt.Sprintf("ec2emu: bad or repeated group id %q", g.ID))
	}
	return *s.addGroup(rg, g)
}

// SeedPrefixList stores a managed prefix list in region and returns it.
func (s *Server) SeedPrefixList(region string, pl PrefixList) PrefixList {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg := s.region(region)
	if pl.ID == "" {
		pl.ID = s.newID("pl")
	}
	if !plIDPattern.MatchString(pl.ID) || rg.plByID[pl.ID] != nil {
		panic(fmt.Sprintf("ec2emu: bad or repeated prefix list id %q", pl.ID))
	}
	if pl.AddressFamily == "" {
		pl.AddressFamily = "IPv4"
	}
	if pl.OwnerID == "" {
		pl.OwnerID = s.account
	}
	if pl.Name == "" {
		pl.Name = pl.ID
	}
	stored := pl
	rg.prefixLists = append(rg.prefixLists, &stored)
	rg.plByID[pl.ID] = &stored
	return stored
}

// SeedRule adds a rule as another client would, with the same checks as
// Authorize (duplicates, quota, CIDR and description), and returns its id.
// The error is the *APIError the call would have got.
func (s *Server) SeedRule(region string, r Rule) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg := s.region(region)
	if rg.groupByID[r.GroupID] == nil {
		return "", &APIError{"InvalidGroup.NotFound", "no group " + r.GroupID}
	}
	var ok bool
	if r.Protocol, ok = normalizeProtocol(r.Protocol); !ok {
		return "", &APIError{"InvalidParameterValue", "bad protocol"}
	}
	if !portsMatter(r.Protocol) {
		r.FromPort, r.ToPort = -1, -1
	}
	if r.CIDRv4 != "" {
		r.CIDRv4, ok = canonicalCIDR(r.CIDRv4, false)
	} else if r.CIDRv6 != "" {
		r.CIDRv6, ok = canonicalCIDR(r.CIDRv6, true)
	}
	if !ok || !descriptionOK(r.Description) {
		return "", &APIError{"InvalidParameterValue", "bad CIDR or description"}
	}
	if r.RefGroupID != "" && r.RefUserID == "" {
		r.RefUserID = s.account
	}
	r.Tags = cloneTags(r.Tags)
	if e := s.checkAdd(rg, r.GroupID, r.Egress, []*Rule{&r}); e != nil {
		return "", &APIError{e.Code, e.Message}
	}
	s.addRule(rg, &r)
	return r.ID, nil
}

// RemoveRule deletes a rule as another client would.
func (s *Server) RemoveRule(region, ruleID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg := s.region(region)
	if rg.ruleByID[ruleID] == nil {
		return &APIError{"InvalidSecurityGroupRuleId.NotFound", "no rule " + ruleID}
	}
	rg.removeRules(map[string]bool{ruleID: true})
	return nil
}

// Rules returns copies of a group's rules, ingress and egress, in creation
// order.
func (s *Server) Rules(region, groupID string) []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Rule
	for _, r := range s.region(region).rules {
		if r.GroupID == groupID {
			c := *r
			c.Tags = cloneTags(r.Tags)
			out = append(out, c)
		}
	}
	return out
}

// IngressRules is Rules without the egress ones.
func (s *Server) IngressRules(region, groupID string) []Rule {
	return slices.DeleteFunc(s.Rules(region, groupID), func(r Rule) bool { return r.Egress })
}

// Groups returns copies of the groups of a region, in creation order.
func (s *Server) Groups(region string) []Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Group
	for _, g := range s.region(region).groups {
		c := *g
		c.Tags = cloneTags(g.Tags)
		out = append(out, c)
	}
	return out
}

// APIError is an error the emulator's seeding methods return, with the EC2
// code the same change would have got over the wire.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }
