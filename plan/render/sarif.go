package render

import (
	"fmt"
	"io"
	"sort"

	"github.com/mailfw/mailfw/plan"
)

// SARIF writes the findings (and drift, as the rule "drift") as a SARIF
// 2.1.0 log, for code-scanning dashboards. Findings tied to a policy line
// point at that line of the policy file.
func SARIF(w io.Writer, f *plan.File, toolVersion string) error {
	type (
		msg struct {
			Text string `json:"text"`
		}
		region struct {
			StartLine int `json:"startLine"`
		}
		artifact struct {
			URI string `json:"uri"`
		}
		physical struct {
			ArtifactLocation artifact `json:"artifactLocation"`
			Region           *region  `json:"region,omitempty"`
		}
		location struct {
			PhysicalLocation physical `json:"physicalLocation"`
		}
		result struct {
			RuleID     string            `json:"ruleId"`
			Level      string            `json:"level"`
			Message    msg               `json:"message"`
			Locations  []location        `json:"locations"`
			Properties map[string]string `json:"properties"`
		}
		rule struct {
			ID               string `json:"id"`
			ShortDescription msg    `json:"shortDescription"`
		}
	)
	var results []result
	ids := map[string]bool{}
	loc := func(line int) []location {
		l := location{PhysicalLocation: physical{ArtifactLocation: artifact{URI: f.PolicyFile}}}
		if line > 0 {
			l.PhysicalLocation.Region = &region{StartLine: line}
		}
		return []location{l}
	}
	for _, t := range f.Targets {
		for _, fd := range t.Findings {
			ids[fd.ID] = true
			results = append(results, result{RuleID: fd.ID, Level: sarifLevel(fd.Severity),
				Message: msg{fd.Message}, Locations: loc(fd.Line),
				Properties: map[string]string{"target": t.Name, "scope": fd.Scope, "severity": string(fd.Severity)}})
		}
		for _, c := range t.Changes {
			ids["drift"] = true
			results = append(results, result{RuleID: "drift", Level: "warning",
				Message:    msg{fmt.Sprintf("drift: %s %s (%s)", c.Action, c.Rule, c.Reason)},
				Locations:  loc(c.Rule.Line),
				Properties: map[string]string{"target": t.Name, "scope": c.Scope}})
		}
	}
	var rules []rule
	for id := range ids {
		rules = append(rules, rule{ID: id, ShortDescription: msg{id}})
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	if results == nil {
		results = []result{}
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": "mailfw", "version": toolVersion, "rules": rules}},
			"results": results,
		}},
	}
	return JSON(w, doc)
}

func sarifLevel(s plan.Severity) string {
	switch s {
	case plan.Critical, plan.High:
		return "error"
	case plan.Medium:
		return "warning"
	}
	return "note"
}
