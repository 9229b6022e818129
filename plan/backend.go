package plan

import "context"

// Action is what a change does.
type Action string

// The actions, in the order a plan applies them.
const (
	Add    Action = "add"
	Update Action = "update"
	Remove Action = "remove"
)

// Symbol is the one-character form of a the human plan shows.
func (a Action) Symbol() string {
	switch a {
	case Add:
		return "+"
	case Remove:
		return "-"
	default:
		return "~"
	}
}

// Reason says why a change is in the plan.
type Reason string

// The reasons.
const (
	ReasonMissing     Reason = "missing"     // add: desired and not granted
	ReasonNotDesired  Reason = "not_desired" // remove: owned, no longer in the policy
	ReasonExclusive   Reason = "exclusive"   // remove: unmarked mail-port rule, ownership exclusive
	ReasonDescription Reason = "description" // update: owned, only the description differs
	ReasonDuplicate   Reason = "duplicate"   // remove: owned, a second copy of a desired rule
)

// Change is one step of a plan for one scope of one target.
type Change struct {
	Action Action `json:"action"`
	Rule   Rule   `json:"rule"`
	Reason Reason `json:"reason"`
	// Scope is the Scope.ID the change applies to.
	Scope string `json:"scope,omitempty"`
	// ID is the Observed.ID of the rule removed or updated; empty for an add.
	ID string `json:"id,omitempty"`
	// OldDescription is the description an update replaces.
	OldDescription string `json:"old_description,omitempty"`
}

// Capabilities says what a backend can express. The diff and the policy
// checks read it; a backend never has to refuse a change it declared it can
// make.
type Capabilities struct {
	Deny      bool // can hold deny rules
	Limit     bool // can enforce connections_per_source
	IPv6      bool // can filter IPv6 at all
	CloudRefs bool // accepts sg- and pl- sources

	// ShadowedAllowIsError makes a desired allow that an earlier deny would
	// make dead an error instead of a finding (Alibaba: the user must pick
	// another priority).
	ShadowedAllowIsError bool

	// OneRulePerMatch says the backend keeps at most one rule per match
	// (family, protocol, port, source) whatever its action: adding a rule
	// whose match an unmarked rule already has would overwrite that rule
	// (ufw). The diff refuses such an add and names the rule.
	OneRulePerMatch bool

	// Description maps an entry's description to the text the backend will
	// store after the mark and read back, or says why it cannot be stored.
	// nil stores descriptions as they are.
	Description func(string) (string, error)
}

// Backend is what every target type implements. Implementations read and
// write rules; they do not diff.
type Backend interface {
	// Capabilities is fixed for the life of the backend.
	Capabilities() Capabilities
	// Read returns the rules in force now.
	Read(ctx context.Context) (*State, error)
	// Apply makes the changes, which come in plan order (adds, then
	// updates, then removes). It returns the changes that were made; on an
	// error the others were not, unless the error says otherwise.
	Apply(ctx context.Context, changes []Change) (done []Change, err error)
}
