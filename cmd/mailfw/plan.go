package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/plan/render"
)

type planOptions struct {
	targetFlags
	output           string
	out              string
	detailedExitcode bool
}

func newPlanCmd(g *globals) *cobra.Command {
	opts := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what mailfw would change to make the firewalls match the policy",
		Long: `plan reads every target, compares it with the policy, and prints the changes an
apply would make, the rules that already grant what the policy asks, and findings.
It changes nothing.`,
		Example: `  # Read-only look at this host with the built-in MX policy
  sudo mailfw plan

  # Save the plan for a later 'mailfw apply mail.plan'
  mailfw plan -c /etc/mailfw.yaml --out mail.plan

  # In CI: exit 2 when changes are pending, and keep the JSON
  mailfw plan -c mailfw.yaml -o json --detailed-exitcode > plan.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return planRun(cmd, g, opts)
		},
	}
	opts.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&opts.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&opts.out, "out", "", "also save the plan to this file, for 'mailfw apply FILE'")
	f.BoolVar(&opts.detailedExitcode, "detailed-exitcode", false, "exit 2 when changes are pending, 0 when none")
	cmd.RegisterFlagCompletionFunc("output", completeWords("text", "json"))
	return cmd
}

func planRun(cmd *cobra.Command, g *globals, opts *planOptions) error {
	if opts.output != "text" && opts.output != "json" {
		return flagErrorf("-o %s: use text or json", opts.output)
	}
	pf, _, err := g.computePlan(cmd, &opts.targetFlags)
	if err != nil {
		return err
	}
	if opts.out != "" {
		if err := savePlan(opts.out, pf); err != nil {
			return err
		}
		g.statusf("Saved the plan to %s; apply it with: mailfw apply %s", opts.out, opts.out)
	}
	if opts.output == "json" {
		if err := render.Plan(g.io.Out, pf); err != nil {
			return err
		}
	} else {
		render.Human{W: g.io.Out, Color: g.color()}.Plan(pf)
	}
	if opts.detailedExitcode && pf.Summary.Total() > 0 {
		return pendingChanges()
	}
	return nil
}

func (g *globals) computePlan(cmd *cobra.Command, tf *targetFlags) (*plan.File, []opened, error) {
	pol, err := g.loadPolicy(tf.config)
	if err != nil {
		return nil, nil, err
	}
	targets, err := selectTargets(pol, tf.targets)
	if err != nil {
		return nil, nil, err
	}
	bs, err := g.open(cmd.Context(), tf, targets)
	if err != nil {
		return nil, nil, err
	}
	pf, err := g.planAll(cmd.Context(), pol, bs)
	return pf, bs, err
}

func savePlan(path string, pf *plan.File) error {
	saved := *pf
	if abs, err := filepath.Abs(pf.PolicyFile); err == nil && pf.PolicyFile != plan.DefaultPolicyName {
		// apply finds the policy by this name, maybe from another directory.
		saved.PolicyFile = abs
	}
	pf = &saved
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("saving the plan: %w", err)
	}
	if err := render.Plan(f, pf); err != nil {
		f.Close()
		return fmt.Errorf("saving the plan to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving the plan to %s: %w", path, err)
	}
	return nil
}
