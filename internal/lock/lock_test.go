package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAcquire_secondWaitsThenTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := Acquire(context.Background(), path, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	waited := false
	if _, err := Acquire(context.Background(), path, 300*time.Millisecond, func() { waited = true }); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second Acquire = %v, want ErrTimeout", err)
	}
	if !waited {
		t.Error("the waiting callback was not called")
	}
	first.Release()
	second, err := Acquire(context.Background(), path, time.Second, nil)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	second.Release()
}

func TestAcquire_stopsWhenTheContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := Acquire(context.Background(), path, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	if _, err := Acquire(ctx, path, time.Hour, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
}

func TestAcquire_refusesALinkAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "mailfw.lock")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if l, err := Acquire(context.Background(), link, time.Second, nil); err == nil {
		l.Release()
		t.Fatal("Acquire followed a symlink")
	}
	plain := filepath.Join(dir, "plain.lock")
	l, err := Acquire(context.Background(), plain, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Errorf("victim changed: %q", data)
	}
	if st, _ := os.Stat(plain); st.Size() != 0 {
		t.Errorf("the lock file holds %d bytes; nothing should be written", st.Size())
	}
}
