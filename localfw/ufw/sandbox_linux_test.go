package ufw

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
)

// postfixProfiles is what Debian's postfix package installs as
// /etc/ufw/applications.d/postfix.
const postfixProfiles = `[Postfix]
title=Mail server (SMTP)
description=Postfix is a high-performance mail transport agent
ports=25/tcp

[Postfix SMTPS]
title=Mail server (SMTPS)
description=Postfix is a high-performance mail transport agent
ports=465/tcp

[Postfix Submission]
title=Mail server (Submission)
description=Postfix is a high-performance mail transport agent
ports=587/tcp
`

// callCounter is a slog handler that counts the ufw programs execx ran.
type callCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (c callCounter) Enabled(context.Context, slog.Level) bool { return true }

func (c callCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "exec" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "argv" && slices.Contains(toStrings(a.Value.Any()), "ufw") {
				c.n.Add(1)
			}
			return true
		})
	}
	return nil
}

func (c callCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c callCounter) WithGroup(string) slog.Handler      { return c }

func toStrings(v any) []string {
	s, _ := v.([]string)
	return s
}

// fixture is a sandboxed ufw and a backend pointed at it.
type fixture struct {
	t     testing.TB
	u     *sandbox.UFW
	calls *atomic.Int64
	opts  []Option
}

// newFixture makes a sandboxed ufw with Debian's Postfix profiles,
// enabled when active is true.
func newFixture(t testing.TB, active bool) *fixture {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		tt.Parallel() // each fixture has its own namespaces and files
	}
	u := sandbox.NewUFW(t)
	u.WriteFile("/etc/ufw/applications.d/postfix", []byte(postfixProfiles))
	if active {
		u.Run("ufw", "--force", "enable")
	}
	return &fixture{t: t, u: u, calls: new(atomic.Int64)}
}

func (f *fixture) backend(opts ...Option) *Backend {
	logger := slog.New(callCounter{n: f.calls})
	r := execx.New(logger, execx.WithPrefix(f.u.Prefix()...))
	return New(append([]Option{WithRunner(r), WithLogger(logger), WithRoot(f.u.Root)},
		append(f.opts, opts...)...)...)
}

func (f *fixture) policy(yaml string) (*plan.Policy, plan.Target) {
	f.t.Helper()
	p, err := plan.ParsePolicy("test.yaml", []byte(yaml))
	if err != nil {
		f.t.Fatalf("parsing policy: %v", err)
	}
	return p, p.Targets[0]
}

// planApply plans the policy against the backend, applies the plan and
// returns it.
func (f *fixture) planApply(b *Backend, yaml string) plan.TargetPlan {
	f.t.Helper()
	p, tgt := f.policy(yaml)
	tp, err := plan.PlanTarget(context.Background(), p, tgt, b)
	if err != nil {
		f.t.Fatalf("planning: %v", err)
	}
	done, err := b.Apply(context.Background(), tp.Changes)
	if err != nil {
		f.t.Fatalf("applying: %v", err)
	}
	if len(done) != len(tp.Changes) {
		f.t.Fatalf("applied %d of %d changes", len(done), len(tp.Changes))
	}
	return tp
}

// wantNoChanges asserts that a fresh plan is empty.
func (f *fixture) wantNoChanges(b *Backend, yaml string) {
	f.t.Helper()
	p, tgt := f.policy(yaml)
	tp, err := plan.PlanTarget(context.Background(), p, tgt, b)
	if err != nil {
		f.t.Fatalf("planning again: %v", err)
	}
	for _, c := range tp.Changes {
		f.t.Errorf("second plan has a change: %s %s (id %q)", c.Action, c.Rule, c.ID)
	}
}

var trailingSpace = regexp.MustCompile(`[ \t]+\n`)

// statusVerbose is "ufw status verbose" with trailing blanks removed.
func (f *fixture) statusVerbose() string {
	return trailingSpace.ReplaceAllString(f.u.Run("ufw", "status", "verbose"), "\n")
}

// tuples lists the tuple lines of one rules file.
func (f *fixture) tuples(file string) []string {
	var out []string
	for _, l := range strings.Split(f.u.ReadFile(file), "\n") {
		if strings.HasPrefix(l, tupleMark) {
			out = append(out, l)
		}
	}
	return out
}

// unmarked lists the tuple lines of both files that are not mailfw's, with
// blanks normalised (ufw rewrites the whole file on every change).
func (f *fixture) unmarked() []string {
	var out []string
	for _, file := range []string{"/etc/ufw/user.rules", "/etc/ufw/user6.rules"} {
		for _, l := range f.tuples(file) {
			if !strings.Contains(l, "comment=6d61696c6677") {
				out = append(out, file+": "+strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return out
}
