package firewalld

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/sandbox"
)

// TestCLI_builtBinaryAppliesInsideTheSandbox runs a built mailfw behind the
// sandbox prefix, as an operator would run it on a firewalld host.
func TestCLI_builtBinaryAppliesInsideTheSandbox(t *testing.T) {
	sandbox.Require(t, "go")
	fw := sandbox.NewFirewalld(t, sandbox.NewNetns(t))
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailfw")
	build := exec.Command("go", "build", "-o", bin, "github.com/mailfw/mailfw/cmd/mailfw")
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building mailfw: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "mailfw.yaml")
	if err := os.WriteFile(cfg, []byte(packetPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := fw.TryRun(bin, "apply", "-c", cfg, "--auto-approve", "--no-color")
	if err != nil || !strings.Contains(out, "Apply complete: 4 added") {
		t.Fatalf("mailfw apply: %v\n%s", err, out)
	}
	out, err = fw.TryRun(bin, "plan", "-c", cfg, "--detailed-exitcode", "--no-color")
	if err != nil || !strings.Contains(out, "No changes") {
		t.Fatalf("mailfw plan after apply: %v\n%s", err, out)
	}
	rules := fw.Cmd("--policy="+AllowPolicy, "--list-rich-rules")
	if !strings.Contains(rules, `rule family="ipv6" port port="25" protocol="tcp" accept`) {
		t.Errorf("mailfw-allow after the CLI apply:\n%s", rules)
	}
}
