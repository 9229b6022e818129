package main

import (
	"github.com/spf13/cobra"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/plan/render"
)

type auditOptions struct {
	targetFlags
	output string
	failOn string
}

func newAuditCmd(g *globals) *cobra.Command {
	opts := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Report drift from the policy and risky mail-port rules, changing nothing",
		Long: `audit reads every target and reports drift (what 'mailfw plan' would change)
and findings: mail ports open beyond the policy, allows that an earlier DROP or
REJECT makes dead, IPv4 and IPv6 disagreeing, broad rules that expose mail ports,
duplicates, quotas. It never changes anything.

--fail-on sets when audit exits 2: at a finding of that severity or higher
(info, low, medium, high, critical; default high), on any drift ("drift"), or
never ("none").`,
		Example: `  # Human report of this host
  sudo mailfw audit

  # CI gate: fail on any drift, keep a SARIF report for code scanning
  mailfw audit -c mailfw.yaml --fail-on drift -o sarif > mailfw.sarif

  # A Markdown summary for a pull request comment
  mailfw audit -c mailfw.yaml -o markdown --fail-on none`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return auditRun(cmd, g, opts)
		},
	}
	opts.register(cmd)
	cmd.Flags().StringVarP(&opts.output, "output", "o", "text", "output format: text, json, sarif or markdown")
	cmd.Flags().StringVar(&opts.failOn, "fail-on", "high", "exit 2 at: info, low, medium, high, critical, drift or none")
	cmd.RegisterFlagCompletionFunc("output", completeWords("text", "json", "sarif", "markdown"))
	cmd.RegisterFlagCompletionFunc("fail-on", completeWords("info", "low", "medium", "high", "critical", "drift", "none"))
	return cmd
}

func auditRun(cmd *cobra.Command, g *globals, opts *auditOptions) error {
	switch opts.output {
	case "text", "json", "sarif", "markdown":
	default:
		return flagErrorf("-o %s: use text, json, sarif or markdown", opts.output)
	}
	threshold := plan.Severity(opts.failOn)
	if opts.failOn != "drift" && opts.failOn != "none" && threshold.Rank() == 0 {
		return flagErrorf("--fail-on %s: use info, low, medium, high, critical, drift or none", opts.failOn)
	}
	pf, _, err := g.computePlan(cmd, &opts.targetFlags)
	if err != nil {
		return err
	}
	switch opts.output {
	case "json":
		err = render.Plan(g.io.Out, pf)
	case "sarif":
		err = render.SARIF(g.io.Out, pf, versionString())
	case "markdown":
		render.Markdown(g.io.Out, pf)
	default:
		render.Human{W: g.io.Out, Color: g.color()}.Audit(pf)
	}
	if err != nil {
		return err
	}
	if failed(pf, opts.failOn) {
		return pendingChanges()
	}
	return nil
}

// failed reports whether the audit result reaches the --fail-on level.
func failed(pf *plan.File, failOn string) bool {
	switch failOn {
	case "none":
		return false
	case "drift":
		return pf.Summary.Total() > 0
	}
	min := plan.Severity(failOn).Rank()
	for _, t := range pf.Targets {
		for _, f := range t.Findings {
			if f.Severity.Rank() >= min {
				return true
			}
		}
	}
	return false
}
