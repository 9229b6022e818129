package aws_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/mailfw/mailfw/internal/ec2emu"
	"github.com/mailfw/mailfw/providers"
)

func TestLogs_oneDebugLinePerCallAndNoSecret(t *testing.T) {
	isolateAWSEnv(t, testKey, testSecret)
	emu := newEmu(t)
	g := emu.SeedGroup("us-east-1", ec2emu.Group{})
	p, tgt := loadPolicy(t, emu, fmt.Sprintf(mxPolicy, g.ID))
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := open(t, tgt, providers.Env{Logger: logger})
	apply(t, b, planOf(t, p, tgt, b))
	calls := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.Contains(line, "backend=aws") {
			t.Errorf("log line without backend=aws: %s", line)
		}
		if strings.Contains(line, `msg="ec2 call"`) {
			calls++
			if !strings.Contains(line, "action=") || !strings.Contains(line, "duration=") {
				t.Errorf("call line without action or duration: %s", line)
			}
		}
	}
	if calls != emu.Calls("") {
		t.Fatalf("%d call lines for %d calls", calls, emu.Calls(""))
	}
	if strings.Contains(buf.String(), testSecret) || strings.Contains(buf.String(), testKey) {
		t.Fatal("the logs hold a credential")
	}
}
