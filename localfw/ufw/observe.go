package ufw

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// The finding ids this backend adds to a plan.
const (
	// FindingInactive: ufw is not running, so no rule takes effect.
	FindingInactive = "ufw-inactive"
	// FindingDefaultAllow: the default incoming policy accepts everything.
	FindingDefaultAllow = "ufw-default-allow"
	// FindingUnreadable: a tuple line mailfw cannot read; it is left alone.
	FindingUnreadable = "ufw-rule-unreadable"
	// FindingIgnored: a rule that does not filter inbound traffic to this
	// host (a route rule) or whose protocol mailfw does not model.
	FindingIgnored = "ufw-rule-ignored"
	// FindingAppMissing: a rule names an application profile that no file
	// of /etc/ufw/applications.d defines any more.
	FindingAppMissing = "ufw-app-missing"
	// FindingAppUnreadable: a file of /etc/ufw/applications.d that cannot
	// be read or parsed.
	FindingAppUnreadable = "ufw-app-unreadable"
	// FindingAppStale: the ports recorded for a profile rule differ from the
	// profile's ports ("ufw app update" has not been run).
	FindingAppStale = "ufw-app-stale"
)

// mark is the comment every rule mailfw writes starts with.
const mark = "mailfw"

// ownedComment splits a comment into (owned, description): "mailfw" and
// "mailfw: text" are mailfw's own.
func ownedComment(c string) (bool, string) {
	if c == mark {
		return true, ""
	}
	if rest, ok := strings.CutPrefix(c, mark+":"); ok {
		return true, strings.TrimSpace(rest)
	}
	return false, c
}

// markComment is the comment mailfw writes for a description.
func markComment(desc string) string {
	if desc == "" {
		return mark
	}
	return mark + ": " + desc
}

// fileRules is one family's user rules file, parsed.
type fileRules struct {
	Family plan.Family
	File   string
	Tuples []tuple
	Probs  []problem
}

// observer turns tuples into plan.Observed values and findings.
type observer struct {
	profiles map[string][]portRange
	rules    []plan.Observed
	findings []plan.Finding
}

func (ob *observer) addFile(fr fileRules) {
	for _, p := range fr.Probs {
		ob.findings = append(ob.findings, plan.Finding{
			ID: FindingUnreadable, Severity: plan.Medium,
			Message: fmt.Sprintf("%s line %d: %s; mailfw leaves this rule alone: %s",
				fr.File, p.Line, p.Reason, p.Text),
		})
	}
	for i, t := range fr.Tuples {
		ob.addTuple(fr, i+1, t)
	}
}

// addTuple adds the Observed values of the pos-th tuple of its file.
func (ob *observer) addTuple(fr fileRules, pos int, t tuple) {
	if t.Direction == "out" && !t.Route {
		return // outbound traffic is outside mailfw's concern
	}
	if t.Route {
		ob.ignore(fr, t, "route rule (forwarded traffic, not traffic to this host)")
		return
	}
	proto := t.Proto
	switch proto {
	case "tcp", "udp":
	case "any":
		proto = "all"
	default:
		return // a protocol other than TCP/UDP never matches a mail port
	}
	src, fam, err := plan.CanonicalSource(t.Src)
	if err == nil && fam != fr.Family {
		err = fmt.Errorf("source %s is not %s", t.Src, fr.Family)
	}
	ports, perr := parsePorts(t.DPort)
	if err == nil {
		err = perr
	}
	if err != nil {
		ob.findings = append(ob.findings, plan.Finding{
			ID: FindingUnreadable, Severity: plan.Medium,
			Message: fmt.Sprintf("%s line %d: %v; mailfw leaves this rule alone: %s",
				fr.File, t.Line, err, t.Key),
		})
		return
	}
	base := ob.base(fr, pos, t, src, proto)
	ob.checkApp(fr, t, base)
	for _, pr := range ports {
		o := base
		o.PortFrom, o.PortTo = pr.From, pr.To
		if len(ports) > 1 {
			// NOTE: one ufw rule with several ports is reported per port;
			// deleting it would remove all of them, so no piece may be
			// removed on its own (Apply refuses) and none counts as mailfw's.
			o.ID = fmt.Sprintf("%s#%d", t.Key, pr.From)
			o.Fixed, o.Owned, o.Description = true, false, t.Comment
		}
		ob.rules = append(ob.rules, o)
	}
}

func (ob *observer) base(fr fileRules, pos int, t tuple, src, proto string) plan.Observed {
	o := plan.Observed{
		ID: t.Key, Family: fr.Family, Protocol: proto, Source: src,
		Verdict: plan.Allow, Order: pos + 1,
	}
	o.Owned, o.Description = ownedComment(t.Comment)
	var origin []string
	switch t.Action {
	case "deny", "reject":
		o.Verdict = plan.Deny
		o.Fixed = !o.Owned && strings.Contains(t.Comment, "Fail2Ban")
	case "limit":
		// ufw's limit is a rate (6 new connections in 30 s per source),
		// not a cap on concurrent connections: it is an allow with a
		// condition mailfw does not model.
		o.Conditional = true
		origin = append(origin, "limit")
	}
	if t.DApp != "" {
		origin = append(origin, "app "+t.DApp)
	}
	if t.SApp != "" {
		origin = append(origin, "from app "+t.SApp)
		o.Conditional = true
	}
	if t.IfaceIn != "" {
		origin = append(origin, "on "+t.IfaceIn)
		o.Conditional = true
	}
	if t.SPort != "any" {
		origin = append(origin, "source port "+t.SPort)
		o.Conditional = true
	}
	if t.Dst != plan.World(fr.Family) {
		origin = append(origin, "to "+t.Dst)
		o.Conditional = true
	}
	if t.LogType != "" {
		origin = append(origin, t.LogType)
	}
	o.Origin = strings.TrimSpace("ufw " + strings.Join(origin, ", "))
	return o
}

func (ob *observer) ignore(fr fileRules, t tuple, why string) {
	ob.findings = append(ob.findings, plan.Finding{
		ID: FindingIgnored, Severity: plan.Info,
		Message: fmt.Sprintf("%s line %d: %s ignored: %s", fr.File, t.Line, why, t.Key),
	})
}

// checkApp compares a profile rule with the profile it names. ufw keeps
// enforcing the ports recorded in the tuple, so the rule itself stands.
func (ob *observer) checkApp(fr fileRules, t tuple, o plan.Observed) {
	if t.DApp == "" {
		return
	}
	prof, ok := ob.profiles[t.DApp]
	if !ok {
		ob.findings = append(ob.findings, plan.Finding{
			ID: FindingAppMissing, Severity: plan.Medium, Rule: &o,
			Message: fmt.Sprintf("%s line %d: application profile %q is not defined in "+
				"/etc/ufw/applications.d; ufw keeps the ports recorded (%s/%s) but "+
				"later ufw commands on this rule may fail", fr.File, t.Line, t.DApp,
				t.DPort, t.Proto),
		})
		return
	}
	if !profileHas(prof, t.Proto, t.DPort) {
		ob.findings = append(ob.findings, plan.Finding{
			ID: FindingAppStale, Severity: plan.Low, Rule: &o,
			Message: fmt.Sprintf("%s line %d: rule for profile %q opens %s/%s, which the "+
				"profile no longer lists (run 'ufw app update %s')", fr.File, t.Line,
				t.DApp, t.DPort, t.Proto, t.DApp),
		})
	}
}

// profileHas reports whether the profile lists exactly the ports of one
// tuple ufw made from it (ufw writes one tuple per protocol of the profile).
func profileHas(prof []portRange, proto, dport string) bool {
	var want []string
	for _, pr := range prof {
		if pr.Proto == proto || pr.Proto == "any" {
			want = append(want, portString(pr))
		}
	}
	got := strings.Split(dport, ",")
	sort.Strings(want)
	sort.Strings(got)
	return strings.Join(want, ",") == strings.Join(got, ",")
}

func portString(pr portRange) string {
	if pr.From == pr.To {
		return fmt.Sprint(pr.From)
	}
	return fmt.Sprintf("%d:%d", pr.From, pr.To)
}
