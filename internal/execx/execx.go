// Package execx runs external programs for mailfw's host-firewall backends:
// always with an argument list, never through a shell, with LC_ALL=C, a
// timeout, stdout and stderr captured apart, and each call logged at debug
// level. It is the one seam where tests put a command prefix (to run inside
// a namespace) or watch the calls made.
package execx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Error is a program that ran and failed, or could not be started.
type Error struct {
	Argv     []string
	ExitCode int // -1 when the program did not run to an exit
	Stderr   string
	Err      error
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: exit %d: %s", strings.Join(e.Argv, " "), e.ExitCode, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Runner runs programs. The zero value is not usable; use [New].
type Runner struct {
	prefix  []string
	logger  *slog.Logger
	timeout time.Duration

	mu    sync.Mutex
	paths map[string]string
	calls atomic.Int64
}

// Calls is the number of programs the runner has started, for benchmarks
// and tests that count the cost of an operation.
func (r *Runner) Calls() int64 { return r.calls.Load() }

// Option configures a Runner.
type Option func(*Runner)

// WithPrefix runs every program as prefix + argv, for example
// ["ip", "netns", "exec", "t1"]. Tests use it; the product never does.
func WithPrefix(prefix ...string) Option {
	return func(r *Runner) { r.prefix = append([]string(nil), prefix...) }
}

// WithTimeout bounds each call; the default is one minute.
func WithTimeout(d time.Duration) Option { return func(r *Runner) { r.timeout = d } }

// New returns a Runner that logs to logger.
func New(logger *slog.Logger, opts ...Option) *Runner {
	r := &Runner{logger: logger, timeout: time.Minute, paths: map[string]string{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// LookPath resolves name once and remembers it. A program found only
// through a relative PATH entry is refused.
func (r *Runner) LookPath(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.paths[name]; ok {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", name, err)
	}
	r.paths[name] = p
	return p, nil
}

// Has reports whether name can be found.
func (r *Runner) Has(name string) bool {
	_, err := r.LookPath(name)
	return err == nil
}

// Run runs name with args, feeding stdin when not nil, and returns stdout.
func (r *Runner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	stdout, _, err := r.RunOutput(ctx, stdin, name, args...)
	return stdout, err
}

// RunOutput is Run that also returns stderr, for programs that report
// trouble there while exiting 0 (firewall-cmd warns of batch items that did
// not take and still succeeds).
func (r *Runner) RunOutput(ctx context.Context, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	argv := append(append(append([]string(nil), r.prefix...), name), args...)
	path, err := r.LookPath(argv[0])
	if err != nil {
		return nil, nil, &Error{Argv: argv, ExitCode: -1, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	start := time.Now()
	r.calls.Add(1)
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	r.logger.Debug("exec", "argv", argv, "exit_code", code,
		"duration", time.Since(start).Round(time.Microsecond), "stdin_bytes", len(stdin))
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			code = -1
		}
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = fmt.Errorf("timed out after %s: %w", r.timeout, ctx.Err())
		case ctx.Err() != nil:
			err = fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return out.Bytes(), errb.Bytes(), &Error{Argv: argv, ExitCode: code, Stderr: errb.String(), Err: err}
	}
	return out.Bytes(), errb.Bytes(), nil
}
