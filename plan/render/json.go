package render

import (
	"encoding/json"
	"io"

	"github.com/mailfw/mailfw/plan"
)

// JSON writes v as indented JSON with a final newline. Field order follows
// the structs, and every list in a plan is already sorted, so the output is
// stable for the same state.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Plan writes the plan file format.
func Plan(w io.Writer, f *plan.File) error { return JSON(w, f) }
