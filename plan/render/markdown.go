package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/mailfw/mailfw/plan"
)

// Markdown writes an audit as Markdown tables, for a pull request comment
// or a ticket.
func Markdown(w io.Writer, f *plan.File) {
	fmt.Fprintln(w, "# mailfw audit")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Policy `%s`: %d to add, %d to change, %d to remove.\n", f.PolicyFile, f.Summary.Add, f.Summary.Update, f.Summary.Remove)
	for _, t := range f.Targets {
		fmt.Fprintf(w, "\n## %s (%s)\n\n", t.Name, t.Kind)
		if len(t.Changes) == 0 {
			fmt.Fprintln(w, "No drift.")
		} else {
			fmt.Fprintln(w, "| change | rule | reason |")
			fmt.Fprintln(w, "|---|---|---|")
			for _, c := range t.Changes {
				fmt.Fprintf(w, "| %s | %s | %s |\n", c.Action, cell(c.Rule.String()), c.Reason)
			}
		}
		if len(t.Findings) > 0 {
			fmt.Fprintln(w, "\n| severity | id | finding |")
			fmt.Fprintln(w, "|---|---|---|")
			for _, fd := range t.Findings {
				fmt.Fprintf(w, "| %s | `%s` | %s |\n", fd.Severity, fd.ID, cell(fd.Message))
			}
		}
	}
}

func cell(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }
