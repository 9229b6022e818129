package plan

// Severity ranks a finding.
type Severity string

// The severities, lowest first.
const (
	Info     Severity = "info"
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

var severityRank = map[Severity]int{Info: 1, Low: 2, Medium: 3, High: 4, Critical: 5}

// Rank orders severities; an unknown severity ranks 0.
func (s Severity) Rank() int { return severityRank[s] }

// Finding is one observation about a target that a change alone does not
// express: an exposure, a dead rule, a gap between the families.
//
// ID is stable across releases so that people can suppress or track it; the
// message may be reworded at any time and must not be matched on.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Rule is the rule the finding concerns, when there is one.
	Rule *Observed `json:"rule,omitempty"`
	// Scope is the Scope.ID, when the finding concerns one scope.
	Scope string `json:"scope,omitempty"`
	// Line is the policy-file line the finding concerns, 0 when none.
	Line int `json:"line,omitempty"`
}

// The finding ids plan itself emits. Backends add their own with the same
// shape (see each backend's package documentation).
const (
	FindingOpenBeyondPolicy  = "open-beyond-policy"
	FindingBroadRule         = "broad-rule"
	FindingMarkedBroad       = "marked-broad-rule"
	FindingDeadAllow         = "dead-allow"
	FindingDeadDeny          = "dead-deny"
	FindingPolicyConflict    = "policy-conflict"
	FindingFamilyMismatch    = "family-mismatch"
	FindingDuplicateRule     = "duplicate-rule"
	FindingQuotaNear         = "quota-near"
	FindingLimitUnenforced   = "limit-unenforced"
	FindingLimitBypassed     = "limit-bypassed"
	FindingNoIPv6            = "ipv6-unfiltered"
	FindingNotListening      = "port-not-listening"
	FindingDescriptionFitted = "description-fitted"
)
