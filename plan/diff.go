package plan

import "context"

// Ownership says which rules mailfw may remove.
type Ownership string

// The ownership modes.
const (
	Managed   Ownership = "managed"
	Exclusive Ownership = "exclusive"
)

// DiffOptions tunes [Diff].
type DiffOptions struct {
	Ownership Ownership
	// MailPorts are the ports findings and exclusive ownership look at; nil
	// means 25, 465, 587 and every port the desired rules name.
	MailPorts []int
}

// TargetPlan is the plan for one target.
type TargetPlan struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Kind        string    `json:"kind,omitempty"`
	StateDigest string    `json:"state_digest"`
	Changes     []Change  `json:"changes"`
	Findings    []Finding `json:"findings"`
}

// PlanTarget reads b's state and diffs it against what p asks of t.
func PlanTarget(ctx context.Context, p *Policy, t Target, b Backend) (TargetPlan, error) {
	caps := b.Capabilities()
	desired, err := p.Desired(t, caps)
	if err != nil {
		return TargetPlan{}, err
	}
	st, err := b.Read(ctx)
	if err != nil {
		return TargetPlan{}, err
	}
	tp, err := Diff(desired, st, caps, DiffOptions{Ownership: p.Ownership})
	if err != nil {
		return TargetPlan{}, err
	}
	tp.Name, tp.Type = t.Name, t.Type
	return tp, nil
}
