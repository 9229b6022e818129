package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

// backendOpener builds the backend of a target. Tests replace it.
type backendOpener interface {
	Open(ctx context.Context, t plan.Target, env providers.Env) (plan.Backend, error)
}

type defaultBackends struct{}

func (defaultBackends) Open(ctx context.Context, t plan.Target, env providers.Env) (plan.Backend, error) {
	return registry().Open(ctx, t, env)
}

// targetFlags are the flags of every command that reads targets.
type targetFlags struct {
	config      string
	targets     []string
	force       bool
	parallelism int
}

func (tf *targetFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	cmd.RegisterFlagCompletionFunc("target", completeTargets(&tf.config))
	f.StringVarP(&tf.config, "config", "c", "", "policy file (default $MAILFW_CONFIG, else ./mailfw.yaml, else the built-in default)")
	f.StringArrayVarP(&tf.targets, "target", "t", nil, "work on this target only (repeatable; default all)")
	f.BoolVar(&tf.force, "force", false, "run an explicit iptables target even where ufw or firewalld is in charge")
	f.IntVar(&tf.parallelism, "parallelism", 10, "concurrent API calls for cloud targets")
}

// loadPolicy finds and loads the policy the way the design fixes.
func (g *globals) loadPolicy(flag string) (*plan.Policy, error) {
	path, from := flag, "-c"
	if path == "" {
		path, from = os.Getenv("MAILFW_CONFIG"), "MAILFW_CONFIG"
	}
	if path == "" {
		if _, err := os.Stat("mailfw.yaml"); err == nil {
			path, from = "mailfw.yaml", "./mailfw.yaml"
		}
	}
	if path == "" {
		g.logger.Info("no policy file; using the built-in default", "looked_for", "-c, $MAILFW_CONFIG, ./mailfw.yaml")
		return plan.DefaultPolicy(), nil
	}
	p, err := plan.LoadPolicy(path)
	if err != nil && errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the policy file %s (from %s) does not exist; create it, or name none (no -c, no MAILFW_CONFIG, no ./mailfw.yaml) to use the built-in default", path, from)
	}
	return p, err
}

func selectTargets(p *plan.Policy, names []string) ([]plan.Target, error) {
	if len(names) == 0 {
		return p.Targets, nil
	}
	var out []plan.Target
	for _, n := range names {
		i := slices.IndexFunc(p.Targets, func(t plan.Target) bool { return t.Name == n })
		if i < 0 {
			var known []string
			for _, t := range p.Targets {
				known = append(known, t.Name)
			}
			return nil, flagErrorf("-t %s: the policy %s has no such target (it has: %s)", n, p.File, strings.Join(known, ", "))
		}
		out = append(out, p.Targets[i])
	}
	return out, nil
}

func (g *globals) env(tf *targetFlags) providers.Env {
	var progress io.Writer
	if g.io.ErrTTY && !g.quiet {
		progress = g.io.Err
	}
	return providers.Env{Logger: g.logger, Force: tf.force, Parallelism: tf.parallelism, Progress: progress}
}

// opened is a target with its backend.
type opened struct {
	target  plan.Target
	backend plan.Backend
}

func (g *globals) open(ctx context.Context, tf *targetFlags, targets []plan.Target) ([]opened, error) {
	if tf.parallelism < 1 {
		return nil, flagErrorf("--parallelism %d: use 1 or more", tf.parallelism)
	}
	out := make([]opened, 0, len(targets))
	for _, t := range targets {
		b, err := g.backends.Open(ctx, t, g.env(tf))
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		out = append(out, opened{t, b})
	}
	return out, nil
}

// planAll reads every target and diffs it against the policy.
func (g *globals) planAll(ctx context.Context, p *plan.Policy, targets []opened) (*plan.File, error) {
	var tps []plan.TargetPlan
	for _, o := range targets {
		tp, err := plan.PlanTarget(ctx, p, o.target, o.backend)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", o.target.Name, err)
		}
		g.logger.Info("planned", "target", o.target.Name, "backend", tp.Kind,
			"changes", len(tp.Changes), "findings", len(tp.Findings))
		tps = append(tps, tp)
	}
	return plan.NewFile(p, tps), nil
}

// completeTargets offers the target names of the policy a command would
// load, for shell completion of -t.
func completeTargets(config *string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		path := *config
		if path == "" {
			path = os.Getenv("MAILFW_CONFIG")
		}
		if path == "" {
			path = "mailfw.yaml"
		}
		p, err := plan.LoadPolicy(path)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, t := range p.Targets {
			if strings.HasPrefix(t.Name, prefix) {
				names = append(names, t.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeWords offers fixed values for a flag.
func completeWords(words ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}
