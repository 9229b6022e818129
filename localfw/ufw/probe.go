package ufw

import (
	"context"
	"fmt"

	"github.com/mailfw/mailfw/internal/execx"
)

// Probe tells whether ufw is installed and active, for auto-detection. It
// runs "ufw status" once; a ufw that is installed but inactive is not in
// charge (active false, no error).
func Probe(ctx context.Context, run *execx.Runner) (active bool, detail string, err error) {
	if !run.Has("ufw") {
		return false, "ufw is not installed", nil
	}
	out, err := run.Run(ctx, nil, "ufw", "status")
	if err != nil {
		return false, "", fmt.Errorf("probing ufw: %w", err)
	}
	return probeResult(out)
}

// probeResult is the pure half of [Probe].
func probeResult(out []byte) (bool, string, error) {
	st, err := parseStatus(out)
	if err != nil {
		return false, "", fmt.Errorf("probing ufw: %w", err)
	}
	if st.Active {
		return true, "ufw is installed and active", nil
	}
	return false, "ufw is installed but inactive", nil
}
