package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// UFW is a real ufw confined to a network namespace and a persistent
// private mount namespace in which /etc/ufw, /lib/ufw and /etc/default/ufw
// are private copies of the host's files. Nothing it does reaches the
// host's firewall or the host's ufw configuration.
//
// The mount namespace is kept alive by a bind mount of its nsfs file, so
// that every command, including a mailfw binary built by the test, can be
// run inside it with [UFW.Prefix].
type UFW struct {
	*Netns
	// Root mirrors / for the private files: Root+"/etc/ufw/user.rules" is
	// the file ufw in the sandbox sees as /etc/ufw/user.rules.
	Root    string
	mntFile string
}

// ufwPaths are the directories and files ufw reads and writes, relative to /.
var ufwPaths = []string{"etc/ufw", "lib/ufw", "etc/default/ufw"}

// NewUFW makes a network namespace and a private mount namespace holding a
// copy of the host's ufw configuration, with the user rules and ufw.conf
// reset to the package's templates from /usr/share/ufw (no rules, not
// enabled) so that a test starts the same whatever the host's ufw holds.
// Everything is removed when the test ends.
func NewUFW(t testing.TB) *UFW {
	t.Helper()
	Require(t, "ufw", "unshare", "nsenter", "mount", "umount", "cp")
	u := &UFW{Netns: NewNetns(t)}
	dir := t.TempDir()
	u.Root = filepath.Join(dir, "root")
	for _, p := range ufwPaths {
		dst := filepath.Join(u.Root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "cp", "-a", "/"+p, dst)
	}
	for _, f := range []string{"user.rules", "user6.rules", "ufw.conf"} {
		if tmpl, err := os.ReadFile(filepath.Join("/usr/share/ufw", f)); err == nil {
			if err := os.WriteFile(filepath.Join(u.Root, "etc/ufw", f), tmpl, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}

	nsDir := filepath.Join(dir, "ns")
	if err := os.Mkdir(nsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "--bind", nsDir, nsDir)
	run(t, "mount", "--make-private", nsDir)
	u.mntFile = filepath.Join(nsDir, "mnt")
	if err := os.WriteFile(u.mntFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, target := range []string{u.mntFile, nsDir} {
			if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
				t.Errorf("unmounting %s: %v: %s", target, err, out)
			}
		}
	})
	run(t, "unshare", "--mount="+u.mntFile, "--propagation", "private", "true")
	for _, p := range ufwPaths {
		run(t, "nsenter", "--mount="+u.mntFile, "--", "mount", "--bind",
			filepath.Join(u.Root, p), "/"+p)
	}
	return u
}

// Prefix is the argv prefix that runs a program inside both namespaces.
func (u *UFW) Prefix() []string {
	return []string{"nsenter", "--net=/run/netns/" + u.Name, "--mount=" + u.mntFile, "--"}
}

// Run runs argv inside the sandbox and returns its combined output; a
// failure fails the test.
func (u *UFW) Run(argv ...string) string {
	u.t.Helper()
	return run(u.t, append(u.Prefix(), argv...)...)
}

// TryRun runs argv inside the sandbox and returns its combined output and
// error.
func (u *UFW) TryRun(argv ...string) (string, error) {
	p := append(u.Prefix(), argv...)
	out, err := exec.Command(p[0], p[1:]...).CombinedOutput()
	return string(out), err
}

// WriteFile writes a file of the private tree; name is absolute as ufw
// sees it, for example "/etc/ufw/applications.d/postfix".
func (u *UFW) WriteFile(name string, data []byte) {
	u.t.Helper()
	if !strings.HasPrefix(name, "/etc/ufw/") && name != "/etc/default/ufw" {
		u.t.Fatalf("%s is not one of the sandbox's private files", name)
	}
	if err := os.WriteFile(filepath.Join(u.Root, name), data, 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// ReadFile reads a file of the private tree, as ufw sees it under name.
func (u *UFW) ReadFile(name string) string {
	u.t.Helper()
	b, err := os.ReadFile(filepath.Join(u.Root, name))
	if err != nil {
		u.t.Fatal(err)
	}
	return string(b)
}
