package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mailfw/mailfw/plan"
)

// Exit codes, as the design fixes them.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2
)

// streams are the command's standard streams and what they are attached to.
type streams struct {
	In       io.Reader
	Out, Err io.Writer
	// InTTY and OutTTY, ErrTTY say whether each stream is a terminal.
	InTTY, OutTTY, ErrTTY bool
}

func newSystemStreams() *streams {
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	return &streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTTY: isTTY(os.Stdin), OutTTY: isTTY(os.Stdout), ErrTTY: isTTY(os.Stderr)}
}

// globals are the flags every command takes, and what they build.
type globals struct {
	io       *streams
	logLevel string
	noColor  bool
	quiet    bool
	logger   *slog.Logger
	backends backendOpener
}

// color reports whether stdout output may use colour: only on a terminal,
// and never with --no-color or NO_COLOR set.
func (g *globals) color() bool {
	_, noColorEnv := os.LookupEnv("NO_COLOR")
	return g.io.OutTTY && !g.noColor && !noColorEnv
}

// statusf writes a progress or status line to stderr unless -q is given.
func (g *globals) statusf(format string, args ...any) {
	if !g.quiet {
		fmt.Fprintf(g.io.Err, format+"\n", args...)
	}
}

// exitErr carries an exit code; silent means the message is already shown.
type exitErr struct {
	code   int
	err    error
	silent bool
}

func (e *exitErr) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitErr) Unwrap() error { return e.err }

// pendingChanges ends a command with exit 2 and no message.
func pendingChanges() error { return &exitErr{code: exitChanges, silent: true} }

// flagError is a usage mistake: the message and a pointer to --help.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }

func flagErrorf(format string, args ...any) error {
	return &flagError{fmt.Errorf(format, args...)}
}

func run(ctx context.Context, io *streams, args []string) int {
	g := &globals{io: io}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		if !ee.silent && ee.err != nil {
			fmt.Fprintln(io.Err, "Error: "+ee.err.Error())
		}
		return ee.code
	}
	var fe *flagError
	if errors.As(err, &fe) || isCobraUsageError(err) {
		fmt.Fprintf(io.Err, "Error: %v\nRun '%s --help' for usage.\n", err, commandPath(root, args))
		return exitError
	}
	if ctx.Err() != nil {
		fmt.Fprintln(io.Err, "Error: interrupted:", err)
		return exitError
	}
	printError(io.Err, err)
	return exitError
}

// printError prints every line of err, each prefixed, so a list of policy
// mistakes reads as a list.
func printError(w io.Writer, err error) {
	if es, ok := plan.AsPolicyErrors(err); ok && len(es) > 1 {
		fmt.Fprintf(w, "Error: the policy has %d mistakes:\n", len(es))
		for _, e := range es {
			fmt.Fprintln(w, "  "+e.Error())
		}
		return
	}
	fmt.Fprintln(w, "Error: "+err.Error())
}

func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "flag needs an argument",
		"invalid argument", "unknown command", "accepts ", "requires at least", "requires at most"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil {
		return root.CommandPath()
	}
	return c.CommandPath()
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "mailfw",
		Short: "Keep the mail ports of your firewalls in the state your policy declares",
		Long: `mailfw keeps the inbound firewall of mail servers in the state one policy file
declares: which mail ports (25 SMTP, 587 submission, 465 SMTPS) are open to whom,
on iptables, ufw, firewalld, AWS security groups and Alibaba Cloud security groups.
It reads what exists, changes only what differs, and only touches rules it owns.

The policy file is -c FILE, else $MAILFW_CONFIG, else ./mailfw.yaml; with none of
these, a built-in default serves (an MX: 25, 587 and 465 open to everyone, IPv4 and
IPv6, on the local firewall).

Exit codes: 0 success (plan: no changes), 1 error, 2 changes pending
(plan --detailed-exitcode) or audit findings at or above --fail-on.`,
		Example: `  # See what mailfw would change on this host (read-only)
  sudo mailfw plan

  # Save a plan, review it, then apply exactly that plan
  mailfw plan -c mailfw.yaml --out mail.plan
  mailfw show mail.plan
  sudo mailfw apply mail.plan

  # In CI: fail the job when the firewall has drifted or exposes mail ports
  mailfw audit -c mailfw.yaml --fail-on drift -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.setup()
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	pf.BoolVar(&g.noColor, "no-color", false, "never colour the output (NO_COLOR is honoured too)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only results and errors")
	root.AddCommand(newPlanCmd(g), newApplyCmd(g), newAuditCmd(g), newValidateCmd(g),
		newShowCmd(g), newVersionCmd(g), newCompletionCmd())
	return root
}

func (g *globals) setup() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return flagErrorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	g.logger = slog.New(slog.NewTextHandler(g.io.Err, &slog.HandlerOptions{Level: level}))
	if g.backends == nil {
		g.backends = defaultBackends{}
	}
	return nil
}
