package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// Human renders for a terminal or a log.
type Human struct {
	W     io.Writer
	Color bool
	// builtin is set while rendering a plan of the built-in policy, whose
	// lines a user has never seen.
	builtin bool
}

const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	reset  = "\x1b[0m"
)

func (h Human) paint(code, s string) string {
	if !h.Color {
		return s
	}
	return code + s + reset
}

var reasonText = map[plan.Reason]string{
	plan.ReasonMissing:     "",
	plan.ReasonNotDesired:  "no longer in the policy",
	plan.ReasonExclusive:   "unmarked; ownership is exclusive",
	plan.ReasonDescription: "description changes",
	plan.ReasonDuplicate:   "duplicate of another mailfw rule",
}

// Plan prints every target's changes, what is already granted, the
// findings, and the closing count.
func (h Human) Plan(f *plan.File) {
	h.builtin = f.PolicyFile == plan.DefaultPolicyName
	for _, t := range f.Targets {
		h.target(t)
	}
	h.summary(f.Summary)
}

func (h Human) target(t plan.TargetPlan) {
	kind := t.Type
	switch {
	case t.Kind == "" || t.Kind == t.Type:
	case strings.HasPrefix(t.Kind, t.Type):
		kind = t.Kind
	case t.Type == "auto":
		kind = "auto-detected " + t.Kind
	default:
		kind = t.Type + ", " + t.Kind
	}
	fmt.Fprintf(h.W, "%s %s (%s)\n", h.paint(bold, "Target"), h.paint(bold, t.Name), kind)
	multi := namesScopes(t)
	for _, group := range byScope(t.Changes) {
		if multi {
			fmt.Fprintf(h.W, "  %s\n", group[0].Scope)
		}
		for _, c := range group {
			h.change(c, multi)
		}
	}
	for _, s := range t.Satisfied {
		fmt.Fprintf(h.W, "  %s %s %s\n", h.paint(dim, "="), s.Rule,
			h.paint(dim, "already granted by: "+s.By.String()))
	}
	if len(t.Changes) == 0 {
		fmt.Fprintln(h.W, "  no changes")
	}
	if len(t.Findings) > 0 {
		fmt.Fprintln(h.W, "  findings:")
		for _, fd := range t.Findings {
			h.finding(fd, multi)
		}
	}
	fmt.Fprintln(h.W)
}

// namesScopes says whether the target's scopes are worth naming: a cloud
// target's scopes are its security groups, and any target with changes or
// findings in more than one scope needs them told apart. A host firewall's
// one scope ("INPUT", "ufw") is noise.
func namesScopes(t plan.TargetPlan) bool {
	if t.Type == "aws" || t.Type == "alibaba" {
		return true
	}
	seen := map[string]bool{}
	for _, c := range t.Changes {
		seen[c.Scope] = true
	}
	for _, f := range t.Findings {
		if f.Scope != "" {
			seen[f.Scope] = true
		}
	}
	return len(seen) > 1
}

// byScope groups changes by scope, in the order scopes first appear, and
// keeps the apply order within each.
func byScope(cs []plan.Change) [][]plan.Change {
	var groups [][]plan.Change
	index := map[string]int{}
	for _, c := range cs {
		i, ok := index[c.Scope]
		if !ok {
			i = len(groups)
			index[c.Scope] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	return groups
}

func (h Human) change(c plan.Change, indent bool) {
	color := map[plan.Action]string{plan.Add: green, plan.Remove: red, plan.Update: yellow}[c.Action]
	pad := "  "
	if indent {
		pad = "    "
	}
	line := fmt.Sprintf("%s%s %s", pad, h.paint(color, c.Action.Symbol()), c.Rule)
	r := reasonText[c.Reason]
	if c.Reason == plan.ReasonDescription {
		r = fmt.Sprintf("description was %q", c.OldDescription)
	}
	if r != "" {
		line += h.paint(dim, " ("+r+")")
	}
	fmt.Fprintln(h.W, line)
}

var severityColor = map[plan.Severity]string{
	plan.Critical: red, plan.High: red, plan.Medium: yellow, plan.Low: dim, plan.Info: dim,
}

func (h Human) finding(f plan.Finding, nameScope bool) {
	sev := fmt.Sprintf("%-8s", strings.ToUpper(string(f.Severity)))
	where := ""
	if f.Line > 0 && !h.builtin {
		where = fmt.Sprintf(" [policy line %d]", f.Line)
	}
	if f.Scope != "" && nameScope {
		where += " [" + f.Scope + "]"
	}
	fmt.Fprintf(h.W, "    %s %s: %s%s\n", h.paint(severityColor[f.Severity], sev), f.ID, f.Message, where)
}

func (h Human) summary(s plan.Summary) {
	if s.Total() == 0 {
		fmt.Fprintln(h.W, h.paint(bold, "No changes.")+" The firewall already matches the policy.")
		return
	}
	fmt.Fprintf(h.W, "%s %d to add, %d to change, %d to remove.\n", h.paint(bold, "Plan:"), s.Add, s.Update, s.Remove)
}

// Audit prints an audit: drift as changes, then findings, then a count.
func (h Human) Audit(f *plan.File) {
	h.builtin = f.PolicyFile == plan.DefaultPolicyName
	for _, t := range f.Targets {
		h.target(t)
	}
	n := 0
	for _, t := range f.Targets {
		n += len(t.Findings)
	}
	drift := "no drift"
	if f.Summary.Total() > 0 {
		drift = fmt.Sprintf("drift: %d to add, %d to change, %d to remove", f.Summary.Add, f.Summary.Update, f.Summary.Remove)
	}
	fmt.Fprintf(h.W, "%s %s; %d finding(s).\n", h.paint(bold, "Audit:"), drift, n)
}
