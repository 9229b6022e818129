package main

import (
	"github.com/spf13/cobra"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/plan/render"
)

func newShowCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show PLANFILE",
		Short: "Print a saved plan",
		Example: `  mailfw plan --out mail.plan
  mailfw show mail.plan
  mailfw show mail.plan -o json | jq '.summary'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return flagErrorf("-o %s: use text or json", output)
			}
			pf, err := plan.ReadFile(args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				return render.Plan(g.io.Out, pf)
			}
			render.Human{W: g.io.Out, Color: g.color()}.Plan(pf)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
