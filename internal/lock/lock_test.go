package lock

import (
	"context"
	"errors"
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
