package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailfw/mailfw/internal/lock"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/plan/render"
)

type applyOptions struct {
	targetFlags
	autoApprove bool
	lockTimeout time.Duration
}

func newApplyCmd(g *globals) *cobra.Command {
	opts := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply [PLANFILE]",
		Short: "Change the firewalls to match the policy",
		Long: `apply makes the changes a plan shows. Without PLANFILE it computes a plan, prints
it and asks for confirmation on a terminal (without a terminal it refuses unless
--auto-approve is given). With PLANFILE it applies exactly that saved plan, after
reading every target again: if any target changed since the plan was made, it
refuses the whole plan and changes nothing.

Additions are made before removals, so no port the policy opens closes while an
apply runs. If an apply fails part-way, mailfw says which changes were made and
which were not; running it again finishes the job.`,
		Example: `  # Plan, confirm at the prompt, apply
  sudo mailfw apply -c /etc/mailfw.yaml

  # Apply a reviewed plan file, refusing if anything changed meanwhile
  sudo mailfw apply mail.plan

  # Unattended (CI, config management)
  sudo mailfw apply -c /etc/mailfw.yaml --auto-approve`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			return applyRun(cmd, g, opts, file)
		},
	}
	opts.register(cmd)
	cmd.Flags().BoolVar(&opts.autoApprove, "auto-approve", false, "apply without asking")
	cmd.Flags().DurationVar(&opts.lockTimeout, "lock-timeout", time.Minute, "how long to wait for another mailfw run to finish")
	return cmd
}

func applyRun(cmd *cobra.Command, g *globals, opts *applyOptions, file string) error {
	l, err := lock.Acquire(cmd.Context(), lock.Path(), opts.lockTimeout, func() {
		g.statusf("Waiting for another mailfw run to finish (lock %s)...", lock.Path())
	})
	if err != nil {
		return err
	}
	defer l.Release()
	var pf *plan.File
	var bs []opened
	if file != "" {
		pf, bs, err = g.loadSavedPlan(cmd.Context(), opts, file)
	} else {
		pf, bs, err = g.computePlan(cmd, &opts.targetFlags)
	}
	if err != nil {
		return err
	}
	if file == "" {
		render.Human{W: g.io.Out, Color: g.color()}.Plan(pf)
	}
	if pf.Summary.Total() == 0 {
		if file != "" {
			fmt.Fprintln(g.io.Out, "No changes. The saved plan has nothing to apply.")
		}
		return nil
	}
	if file == "" && !opts.autoApprove {
		if err := g.confirm(pf); err != nil {
			return err
		}
	}
	return g.execute(cmd.Context(), pf, bs)
}

func (g *globals) confirm(pf *plan.File) error {
	if !g.io.InTTY {
		return errors.New("apply needs a confirmation and standard input is not a terminal; " +
			"review with 'mailfw plan', then run 'mailfw apply --auto-approve', or save a plan with --out and apply that file")
	}
	fmt.Fprintf(g.io.Err, "Apply these %d change(s)? Only 'yes' is accepted: ", pf.Summary.Total())
	line, _ := bufio.NewReader(g.io.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return &exitErr{code: exitError, err: errors.New("apply cancelled; nothing was changed")}
	}
	return nil
}

// loadSavedPlan reads a plan file, checks it still fits the policy and
// every target, and refuses it whole when anything changed. The policy is
// the one named by -c or $MAILFW_CONFIG, else the file the plan was made
// from.
func (g *globals) loadSavedPlan(ctx context.Context, opts *applyOptions, file string) (*plan.File, []opened, error) {
	pf, err := plan.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	config := opts.config
	if config == "" && os.Getenv("MAILFW_CONFIG") == "" && pf.PolicyFile != "" && pf.PolicyFile != plan.DefaultPolicyName {
		config = pf.PolicyFile
	}
	pol, err := g.loadPolicy(config)
	if err != nil {
		return nil, nil, err
	}
	if pol.Digest != pf.PolicyDigest {
		return nil, nil, fmt.Errorf("the plan %s was made from another policy than %s (or the policy changed since); "+
			"nothing was changed: make a new plan with 'mailfw plan -c %s --out %s'", file, pol.File, pol.File, file)
	}
	var names []string
	for _, tp := range pf.Targets {
		names = append(names, tp.Name)
	}
	targets, err := selectTargets(pol, names)
	if err != nil {
		return nil, nil, err
	}
	bs, err := g.open(ctx, &opts.targetFlags, targets)
	if err != nil {
		return nil, nil, err
	}
	var stale, edited []string
	for i, o := range bs {
		tp, err := plan.PlanTarget(ctx, pol, o.target, o.backend)
		if err != nil {
			return nil, nil, fmt.Errorf("target %s: %w", o.target.Name, err)
		}
		switch saved := pf.Targets[i]; {
		case tp.StateDigest != saved.StateDigest:
			stale = append(stale, o.target.Name)
		case !sameChanges(tp.Changes, saved.Changes):
			edited = append(edited, o.target.Name)
		}
	}
	if len(stale) > 0 {
		return nil, nil, fmt.Errorf("the firewall of target(s) %s changed since the plan %s was made; "+
			"nothing was changed: make a new plan with 'mailfw plan -c %s --out %s' and review it",
			strings.Join(stale, ", "), file, pol.File, file)
	}
	if len(edited) > 0 {
		// The same policy on the same state always gives the same plan, so
		// a difference means the file was edited (or made by another
		// mailfw version).
		return nil, nil, fmt.Errorf("the changes in %s for target(s) %s are not the ones the policy gives for the current state: "+
			"the file was edited or made by another mailfw version; nothing was changed: make a new plan",
			file, strings.Join(edited, ", "))
	}
	return pf, bs, nil
}

func sameChanges(a, b []plan.Change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if changeKey(a[i]) != changeKey(b[i]) || a[i].Rule.Description != b[i].Rule.Description {
			return false
		}
	}
	return true
}

// execute applies each target's changes in turn and stops at the first
// target that fails, saying exactly what was and was not done.
func (g *globals) execute(ctx context.Context, pf *plan.File, bs []opened) error {
	var sum plan.Summary
	for i, tp := range pf.Targets {
		if len(tp.Changes) == 0 {
			continue
		}
		done, err := bs[i].backend.Apply(ctx, tp.Changes)
		for _, c := range done {
			fmt.Fprintf(g.io.Out, "%s: %s %s\n", tp.Name, c.Action.Symbol(), c.Rule)
			count(&sum, c.Action)
		}
		if n, ok := bs[i].backend.(interface{ Notes() []string }); ok {
			for _, note := range n.Notes() {
				fmt.Fprintf(g.io.Out, "%s: note: %s\n", tp.Name, note)
			}
		}
		if err != nil {
			return g.reportPartial(pf, i, done, err, sum)
		}
	}
	fmt.Fprintf(g.io.Out, "Apply complete: %d added, %d changed, %d removed.\n", sum.Add, sum.Update, sum.Remove)
	return nil
}

func count(s *plan.Summary, a plan.Action) {
	switch a {
	case plan.Add:
		s.Add++
	case plan.Update:
		s.Update++
	case plan.Remove:
		s.Remove++
	}
}

func (g *globals) reportPartial(pf *plan.File, failed int, done []plan.Change, cause error, sum plan.Summary) error {
	tp := pf.Targets[failed]
	isDone := map[string]bool{}
	for _, c := range done {
		isDone[changeKey(c)] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "target %s: %v\n", tp.Name, cause)
	fmt.Fprintf(&b, "Made %d of %d change(s) on target %s before the failure; not made:\n", len(done), len(tp.Changes), tp.Name)
	for _, c := range tp.Changes {
		if !isDone[changeKey(c)] {
			where := ""
			if c.Scope != "" {
				where = " in " + c.Scope
			}
			fmt.Fprintf(&b, "  %s %s%s\n", c.Action.Symbol(), c.Rule, where)
		}
	}
	var later []string
	for _, t := range pf.Targets[failed+1:] {
		if len(t.Changes) > 0 {
			later = append(later, t.Name)
		}
	}
	if len(later) > 0 {
		fmt.Fprintf(&b, "Not attempted: target(s) %s.\n", strings.Join(later, ", "))
	}
	fmt.Fprintf(&b, "In all: %d added, %d changed, %d removed. Run 'mailfw plan' to see what is left; "+
		"once the cause above is dealt with, 'mailfw apply' again finishes the job.",
		sum.Add, sum.Update, sum.Remove)
	return &exitErr{code: exitError, err: errors.New(b.String())}
}

func changeKey(c plan.Change) string {
	return string(c.Action) + "|" + c.Scope + "|" + c.ID + "|" + c.Rule.Key()
}
