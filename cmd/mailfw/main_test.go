package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/sandbox"
)

// The test binary doubles as the mailfw binary: run with MAILFW_TEST_MAIN=1
// it is mailfw, so end-to-end tests can start it inside a namespace without
// a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("MAILFW_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), newSystemStreams(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// cli runs mailfw inside a network namespace, in a directory of its own.
type cli struct {
	t   *testing.T
	ns  *sandbox.Netns // nil: run on the host, for cloud targets
	dir string
	env []string // added to the environment of every run
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	sandbox.Require(t, "iptables", "ip6tables", "iptables-save", "iptables-restore")
	return &cli{t: t, ns: sandbox.NewNetns(t), dir: t.TempDir()}
}

// write puts a file into the run directory.
func (c *cli) write(name, content string) string {
	c.t.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout\n" + r.stdout + "--- stderr\n" + r.stderr
}

// mailfw runs the binary with args and stdin.
func (c *cli) mailfw(stdin string, args ...string) result {
	c.t.Helper()
	self, err := os.Executable()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	if c.ns != nil {
		cmd = exec.Command("ip", append([]string{"netns", "exec", c.ns.Name, self}, args...)...)
	}
	cmd.Dir = c.dir
	cmd.Env = append(cleanEnv(), c.env...)
	cmd.Env = append(cmd.Env, "MAILFW_TEST_MAIN=1", "MAILFW_LOCK_FILE="+filepath.Join(c.dir, "lock"),
		// Keep firewall-cmd from reaching a firewalld of the host that runs
		// the tests; inside the namespace only iptables is in play.
		"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/mailfw-test")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAILFW_CONFIG", "NO_COLOR", "MAILFW_LOCK_FILE", "DBUS_SYSTEM_BUS_ADDRESS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// save returns both families' rules in the namespace, without counters.
func (c *cli) save() string {
	c.t.Helper()
	var b strings.Builder
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		for _, l := range strings.Split(c.ns.Run(tool), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			if strings.HasPrefix(l, ":") {
				if i := strings.LastIndex(l, " ["); i > 0 {
					l = l[:i]
				}
			}
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (c *cli) expect(r result, code int, contains ...string) {
	c.t.Helper()
	if r.code != code {
		c.t.Fatalf("want exit %d, got:\n%s", code, r)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			c.t.Errorf("output lacks %q:\n%s", s, r)
		}
	}
}
