package providers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/mailfw/mailfw/plan"
)

// Env is what every backend constructor may use besides its target.
type Env struct {
	// Logger receives the backend's logs; never nil (use slog.DiscardHandler).
	Logger *slog.Logger
	// Force lets a local backend run where another firewall frontend is in
	// charge, when the target names the type explicitly.
	Force bool
	// Parallelism bounds the concurrent calls of a cloud backend.
	Parallelism int
	// Progress, when not nil, receives progress lines for long scans. It is
	// set only when stderr is a terminal.
	Progress io.Writer
}

// Factory builds the backend for one target.
type Factory func(ctx context.Context, t plan.Target, env Env) (plan.Backend, error)

// Registry maps a target type to its factory.
type Registry map[string]Factory

// Open builds the backend for t. It never returns a nil backend without an
// error.
func (r Registry) Open(ctx context.Context, t plan.Target, env Env) (plan.Backend, error) {
	f, ok := r[t.Type]
	if !ok {
		return nil, fmt.Errorf("target %q: unknown type %q (known: %v)", t.Name, t.Type, r.Types())
	}
	b, err := f(ctx, t, env)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("target %q: type %q built no backend", t.Name, t.Type)
	}
	return b, nil
}

// Types lists the registered types, sorted.
func (r Registry) Types() []string {
	ts := make([]string, 0, len(r))
	for t := range r {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}
