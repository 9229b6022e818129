package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mailfw/mailfw/plan"
)

type validateOptions struct{ config string }

func newValidateCmd(g *globals) *cobra.Command {
	opts := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a policy file without reading any firewall",
		Long: `validate loads the policy file and reports every mistake with its file, line and
column: unknown keys, bad addresses, unknown source names, ports out of range,
targets without a name or with the same name, unreadable address lists, and what
a target's type cannot express (a deny on a security group, a prefix list on a
host firewall, a description the backend cannot store). It reads no firewall and
calls no cloud API.`,
		Example: `  mailfw validate -c /etc/mailfw.yaml

  # A minimal policy: an MX open to everyone, submission only from the office
  cat > mailfw.yaml <<'YAML'
  version: 1
  sources:
    office: [203.0.113.0/24, "2001:db8:10::/48"]
  allow:
    - port: smtp
      from: [anywhere]
    - port: submission
      from: [office]
      description: office clients
  targets:
    - name: host
      type: auto
  YAML
  mailfw validate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.loadPolicy(opts.config)
			if err != nil {
				return err
			}
			var errs []error
			for _, t := range p.Targets {
				if _, err := p.Desired(t, capabilitiesOf(t.Type)); err != nil {
					errs = append(errs, fmt.Errorf("target %s (%s):\n%w", t.Name, t.Type, err))
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			rules, err := p.Desired(plan.Target{Name: "validate"}, plan.Capabilities{Deny: true, Limit: true, IPv6: true, CloudRefs: true})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "%s is valid: %d allow and %d deny entries (%d rules), %d target(s), ownership %s.\n",
				p.File, len(p.Allow), len(p.Deny), len(rules), len(p.Targets), p.Ownership)
			return nil
		},
	}
	cmd.Flags().StringVarP(&opts.config, "config", "c", "", "policy file (default $MAILFW_CONFIG, else ./mailfw.yaml, else the built-in default)")
	return cmd
}
