package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

type validateOptions struct{ config string }

func newValidateCmd(g *globals) *cobra.Command {
	opts := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a policy file without reading any firewall",
		Long: `validate loads the policy file and reports every mistake with its file, line and
column: unknown keys, bad addresses, unknown source names, ports out of range,
targets without a name or with the same name, unreadable address lists.`,
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
			rules := 0
			for _, e := range append(p.Allow, p.Deny...) {
				for _, s := range e.From {
					rules += len(p.SourceEntries(s))
				}
			}
			fmt.Fprintf(g.io.Out, "%s is valid: %d allow and %d deny entries (%d rules), %d target(s), ownership %s.\n",
				p.File, len(p.Allow), len(p.Deny), rules, len(p.Targets), p.Ownership)
			return nil
		},
	}
	cmd.Flags().StringVarP(&opts.config, "config", "c", "", "policy file (default $MAILFW_CONFIG, else ./mailfw.yaml, else the built-in default)")
	return cmd
}
