package plan

import (
	"encoding/json"
	"fmt"
	"os"
)

// FormatVersion is the version of the plan file and JSON output format.
// Fields may be added within a version; none is renamed or removed.
const FormatVersion = "1"

// File is a whole plan: what `plan -o json` prints and `plan --out` saves.
type File struct {
	FormatVersion string       `json:"format_version"`
	PolicyDigest  string       `json:"policy_digest"`
	PolicyFile    string       `json:"policy_file,omitempty"`
	Targets       []TargetPlan `json:"targets"`
	Summary       Summary      `json:"summary"`
}

// Summary counts the changes of a plan.
type Summary struct {
	Add    int `json:"add"`
	Remove int `json:"remove"`
	Update int `json:"update"`
}

// Total is the number of changes.
func (s Summary) Total() int { return s.Add + s.Remove + s.Update }

// NewFile assembles a plan file and computes its summary.
func NewFile(p *Policy, targets []TargetPlan) *File {
	f := &File{FormatVersion: FormatVersion, PolicyDigest: p.Digest, PolicyFile: p.File, Targets: targets}
	if f.Targets == nil {
		f.Targets = []TargetPlan{}
	}
	for _, t := range targets {
		for _, c := range t.Changes {
			switch c.Action {
			case Add:
				f.Summary.Add++
			case Remove:
				f.Summary.Remove++
			case Update:
				f.Summary.Update++
			}
		}
	}
	return f
}

// ReadFile loads a saved plan.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading plan file: %w", err)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s is not a mailfw plan file: %w", path, err)
	}
	if f.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s has plan format %q; this mailfw reads format %q", path, f.FormatVersion, FormatVersion)
	}
	return &f, nil
}

// Target returns the plan for the target named name.
func (f *File) Target(name string) (*TargetPlan, bool) {
	for i := range f.Targets {
		if f.Targets[i].Name == name {
			return &f.Targets[i], true
		}
	}
	return nil, false
}
