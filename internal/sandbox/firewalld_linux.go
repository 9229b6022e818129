package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Firewalld is a real firewalld daemon with its own system D-Bus, running
// inside a test's network namespace and a private, persistent mount
// namespace in which /etc/firewalld and /run are private directories. The
// host's firewalld configuration, D-Bus and firewall are never touched.
//
// Programs reach the daemon through [Firewalld.Prefix], which enters both
// namespaces; an in-process backend passes it to execx.WithPrefix, and a
// test may run a built mailfw binary behind it the same way.
type Firewalld struct {
	Net *Netns
	// Dir holds the private etc/ and run/ and the daemon's log file.
	Dir   string
	mntns string
	t     testing.TB
	procs []*exec.Cmd
	// mounts are the host mounts made so far, unmounted in reverse.
	mounts []string
}

// NewFirewalld starts dbus-daemon and firewalld inside n and waits until
// firewalld answers. Everything it starts is stopped, and every mount it
// made is removed, when the test ends, before n is deleted.
func NewFirewalld(t testing.TB, n *Netns) *Firewalld {
	t.Helper()
	Require(t, "firewalld", "firewall-cmd", "dbus-daemon", "nsenter", "unshare", "mount")
	d := t.TempDir()
	f := &Firewalld{Net: n, Dir: d, mntns: filepath.Join(d, "ns", "mnt"), t: t}
	for _, sub := range []string{"etc", "run", "ns"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "cp", "-a", "/etc/firewalld/.", filepath.Join(d, "etc"))
	t.Cleanup(f.stop)
	f.makeMountNamespace()

	f.start("dbus-daemon", "--system", "--nofork", "--nopidfile")
	f.waitFor("the private system bus", func() bool {
		_, err := os.Stat(filepath.Join(d, "run", "dbus", "system_bus_socket"))
		return err == nil
	})
	f.start("firewalld", "--nofork", "--nopid",
		"--log-target", "file", "--log-file", filepath.Join(d, "firewalld.log"))
	f.waitFor("firewalld", func() bool {
		out, err := f.TryCmd("--state")
		return err == nil && strings.TrimSpace(out) == "running"
	})
	return f
}

// makeMountNamespace creates the persistent mount namespace: the file that
// holds it must sit on a mount that is not shared, hence the private bind
// of its directory onto itself.
func (f *Firewalld) makeMountNamespace() {
	t, d := f.t, f.Dir
	nsdir := filepath.Dir(f.mntns)
	run(t, "mount", "--bind", nsdir, nsdir)
	f.mounts = append(f.mounts, nsdir)
	run(t, "mount", "--make-private", nsdir)
	if err := os.WriteFile(f.mntns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.mounts = append(f.mounts, f.mntns)
	setup := strings.Join([]string{
		"set -e",
		"mount --bind " + filepath.Join(d, "etc") + " /etc/firewalld",
		"mount --bind " + filepath.Join(d, "run") + " /run",
		"mkdir -p /run/dbus",
		"umount -l /sys",
		"mount -t sysfs sysfs /sys",
	}, "\n")
	run(t, "nsenter", "--net=/run/netns/"+f.Net.Name, "--",
		"unshare", "--mount="+f.mntns, "--propagation", "private", "sh", "-c", setup)
}

// Prefix is the argv prefix that runs a program inside the namespaces,
// where firewall-cmd reaches this daemon.
func (f *Firewalld) Prefix() []string {
	return []string{"nsenter", "--net=/run/netns/" + f.Net.Name, "--mount=" + f.mntns, "--"}
}

// Run runs argv inside the namespaces and returns its combined output; a
// failure fails the test.
func (f *Firewalld) Run(argv ...string) string {
	f.t.Helper()
	return run(f.t, append(f.Prefix(), argv...)...)
}

// TryRun runs argv inside the namespaces and returns its combined output
// and error.
func (f *Firewalld) TryRun(argv ...string) (string, error) {
	full := append(f.Prefix(), argv...)
	out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
	return string(out), err
}

// Cmd runs firewall-cmd with args; a failure fails the test.
func (f *Firewalld) Cmd(args ...string) string {
	f.t.Helper()
	return f.Run(append([]string{"firewall-cmd"}, args...)...)
}

// TryCmd runs firewall-cmd with args and returns its output and error.
func (f *Firewalld) TryCmd(args ...string) (string, error) {
	return f.TryRun(append([]string{"firewall-cmd"}, args...)...)
}

// Log returns what the daemon logged so far, for failure messages.
func (f *Firewalld) Log() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "firewalld.log"))
	return string(b)
}

func (f *Firewalld) start(argv ...string) {
	full := append(f.Prefix(), argv...)
	cmd := exec.Command(full[0], full[1:]...)
	logf, err := os.Create(filepath.Join(f.Dir, argv[0]+".out"))
	if err != nil {
		f.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("starting %s: %v", argv[0], err)
	}
	f.procs = append(f.procs, cmd)
}

// waitFor polls ready until it holds, for at most 60 seconds; this is
// set-up, not an assertion about speed.
func (f *Firewalld) waitFor(what string, ready func() bool) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for !ready() {
		select {
		case <-ctx.Done():
			f.t.Fatalf("%s did not come up:\n%s", what, f.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends firewalld, then the bus, then releases the mount namespace.
func (f *Firewalld) stop() {
	for i := len(f.procs) - 1; i >= 0; i-- {
		p := f.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	for i := len(f.mounts) - 1; i >= 0; i-- {
		m := f.mounts[i]
		if m == f.mntns && !isMountPoint(m) {
			continue // unshare failed before it bound the namespace here
		}
		if out, err := exec.Command("umount", m).CombinedOutput(); err != nil {
			f.t.Errorf("unmounting %s: %v: %s", m, err, out)
		}
	}
}

func isMountPoint(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == path {
			return true
		}
	}
	return false
}
