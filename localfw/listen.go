package localfw

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/plan"
)

// listening wraps a host backend so that its State says which TCP ports a
// local process listens on. ss runs through the same runner as the
// backend, so it sees the same network namespace.
type listening struct {
	plan.Backend
	run *execx.Runner
}

func (l listening) Read(ctx context.Context) (*plan.State, error) {
	st, err := l.Backend.Read(ctx)
	if err != nil || !l.run.Has("ss") {
		return st, err
	}
	out, err := l.run.Run(ctx, nil, "ss", "-H", "-l", "-t", "-n")
	if err != nil {
		// Listener data is only for a finding; a plan does not fail on it.
		return st, nil
	}
	st.Listening = parseSS(out)
	return st, nil
}

// parseSS reads the local ports of `ss -Hltn`: lines such as
// "LISTEN 0 100 0.0.0.0:25 0.0.0.0:*" or "LISTEN 0 100 [::]:587 [::]:*".
func parseSS(out []byte) []int {
	ports := []int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		i := strings.LastIndexByte(f[3], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.Atoi(f[3][i+1:])
		if err == nil && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	return ports
}

// Notes passes on what the backend says its last Apply did besides the
// changes (firewalld: the runtime items it carried across a reload).
func (l listening) Notes() []string {
	if n, ok := l.Backend.(interface{ Notes() []string }); ok {
		return n.Notes()
	}
	return nil
}
