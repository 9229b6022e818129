package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require stops t unless it runs as root and every named program is found.
// Under CI=true a missing prerequisite fails the test instead of skipping it.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range append([]string{"ip"}, programs...) {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ") + " (see .ci/run for the packages)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Netns is a network namespace made for one test and deleted after it.
type Netns struct {
	Name string
	t    testing.TB
}

// NewNetns creates an empty network namespace with loopback up.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	n := &Netns{Name: "mfwt-" + hex.EncodeToString(b), t: t}
	run(t, "ip", "netns", "add", n.Name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", n.Name, err, out)
		}
	})
	n.Run("ip", "link", "set", "lo", "up")
	return n
}

// Prefix is the argv prefix that runs a program inside the namespace.
func (n *Netns) Prefix() []string { return []string{"ip", "netns", "exec", n.Name} }

// Run runs argv inside the namespace and returns its combined output; a
// failure fails the test.
func (n *Netns) Run(argv ...string) string {
	n.t.Helper()
	return run(n.t, append(n.Prefix(), argv...)...)
}

// TryRun runs argv inside the namespace and returns its output and error.
func (n *Netns) TryRun(argv ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, argv...)...).CombinedOutput()
	return string(out), err
}

func run(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Link joins n and peer with a veth pair. Each side gets the addresses
// given (CIDR notation, IPv4 or IPv6). IPv6 duplicate address detection is
// turned off so the addresses are usable at once.
func (n *Netns) Link(peer *Netns, mine, theirs []string) {
	n.t.Helper()
	a, b := "v"+n.Name[5:], "p"+n.Name[5:]
	n.Run("ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", peer.Name)
	for _, side := range []struct {
		ns    *Netns
		dev   string
		addrs []string
	}{{n, a, mine}, {peer, b, theirs}} {
		side.ns.Run("sysctl", "-q", "-w", "net.ipv6.conf."+side.dev+".accept_dad=0")
		for _, ad := range side.addrs {
			side.ns.Run("ip", "addr", "add", ad, "dev", side.dev, "nodad")
		}
		side.ns.Run("ip", "link", "set", side.dev, "up")
	}
}

// Do runs f on an OS thread that has entered the namespace. Sockets f
// opens belong to the namespace for their whole life.
func (n *Netns) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked and so discarded when the goroutine
		// ends, because it may still be in the namespace.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("opening netns %s: %w", n.Name, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering netns %s: %w", n.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Listen opens a TCP listener inside the namespace that accepts and
// closes connections until the test ends.
func (n *Netns) Listen(addr string) net.Listener {
	n.t.Helper()
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		n.t.Fatalf("listening on %s in %s: %v", addr, n.Name, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	n.t.Cleanup(func() { l.Close() })
	return l
}

// Connect dials addr from inside the namespace, binding the local side to
// from when it is not empty, and reports whether the TCP handshake
// completed within timeout.
func (n *Netns) Connect(from, addr string, timeout time.Duration) error {
	return n.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		if from != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
