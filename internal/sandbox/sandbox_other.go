//go:build !linux

package sandbox

import (
	"net"
	"testing"
	"time"
)

// Require skips the test: namespaces exist only on Linux.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	t.Skip("firewall sandboxes need Linux network namespaces")
}

// Netns stands in for the Linux type so that tests build everywhere.
type Netns struct{ Name string }

// NewNetns skips the test.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	t.Skip("network namespaces need Linux")
	return nil
}

func (n *Netns) Prefix() []string                        { return nil }
func (n *Netns) Run(argv ...string) string               { return "" }
func (n *Netns) TryRun(argv ...string) (string, error)   { return "", nil }
func (n *Netns) Link(peer *Netns, mine, theirs []string) {}
func (n *Netns) Do(f func() error) error                 { return nil }
func (n *Netns) Listen(addr string) net.Listener         { return nil }
func (n *Netns) Connect(from, addr string, timeout time.Duration) error {
	return nil
}
