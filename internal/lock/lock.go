// Package lock keeps two mailfw runs on one host from interleaving their
// changes: an apply holds an exclusive flock on one file for its whole run.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultPath is the lock file; MAILFW_LOCK_FILE overrides it. It lives in
// /run, which only root may write, rather than in the world-writable
// /run/lock, where another user could plant a link or hold the lock.
const DefaultPath = "/run/mailfw.lock"

// Path returns the lock file in force. Without root (a plan against a
// cloud target, say), it is a file in the user's own runtime or temporary
// directory.
func Path() string {
	if p := os.Getenv("MAILFW_LOCK_FILE"); p != "" {
		return p
	}
	if os.Geteuid() == 0 {
		return DefaultPath
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "mailfw.lock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("mailfw-%d.lock", os.Geteuid()))
}

// Lock is a held lock.
type Lock struct{ f *os.File }

// ErrTimeout is returned when another run held the lock for the whole wait.
var ErrTimeout = errors.New("another mailfw run holds the lock")

// Acquire takes the lock at path, waiting up to wait or until ctx ends. It
// calls waiting once when it has to wait, so the caller can say why nothing
// happens.
func Acquire(ctx context.Context, path string, wait time.Duration, waiting func()) (*Lock, error) {
	// O_NOFOLLOW: the lock is never a link to some other file. Nothing
	// is written into it; the flock alone is the lock.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file %s: %w (it must be a plain file, not a link)", path, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("lock file %s is not a plain file", path)
	}
	deadline := time.Now().Add(wait)
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (%s) after waiting %s; wait for it to finish, or raise --lock-timeout", ErrTimeout, path, wait)
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w; nothing was changed", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Release gives the lock up.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
