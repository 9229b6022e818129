package localfw

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mailfw/mailfw/internal/execx"
	"github.com/mailfw/mailfw/localfw/firewalld"
	"github.com/mailfw/mailfw/localfw/iptables"
	"github.com/mailfw/mailfw/localfw/ufw"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

// Open builds the backend of a local target (type auto, iptables, ufw or
// firewalld). It is a [providers.Factory].
func Open(ctx context.Context, t plan.Target, env providers.Env) (plan.Backend, error) {
	return OpenWith(ctx, t, env, execx.New(env.Logger))
}

// OpenWith is Open with the runner every probe and backend call goes
// through; tests pass one that runs inside a namespace.
func OpenWith(ctx context.Context, t plan.Target, env providers.Env, r *execx.Runner) (plan.Backend, error) {
	p, err := probeAll(ctx, r)
	if err != nil {
		return nil, err
	}
	c, err := Pick(t.Type, p, env.Force)
	if err != nil {
		return nil, err
	}
	env.Logger.Info("chose the host firewall", "target", t.Name, "backend", c.Type, "reason", c.Reason,
		"firewalld", p.Firewalld.Detail, "ufw", p.UFW.Detail, "iptables", p.Iptables.Detail)
	b, err := build(c.Type, t, r, env.Logger.With("target", t.Name))
	if err != nil {
		return nil, err
	}
	return listening{Backend: b, run: r}, nil
}

func build(typ string, t plan.Target, r *execx.Runner, logger *slog.Logger) (plan.Backend, error) {
	switch typ {
	case "firewalld":
		opts := []firewalld.Option{firewalld.WithRunner(r), firewalld.WithLogger(logger)}
		if t.Zone != "" {
			opts = append(opts, firewalld.WithZone(t.Zone))
		}
		return firewalld.New(opts...), nil
	case "ufw":
		return ufw.New(ufw.WithRunner(r), ufw.WithLogger(logger), ufw.WithEnable(t.Enable)), nil
	case "iptables":
		return iptables.New(iptables.WithRunner(r), iptables.WithLogger(logger)), nil
	}
	return nil, fmt.Errorf("no backend for %q", typ)
}

// probeAll asks each frontend whether it is in charge. Probes only read.
func probeAll(ctx context.Context, r *execx.Runner) (Probes, error) {
	var p Probes
	var err error
	p.Firewalld.Installed = r.Has("firewall-cmd")
	if p.Firewalld.Active, p.Firewalld.Detail, err = firewalld.Probe(ctx, r); err != nil {
		return p, err
	}
	p.UFW.Installed = r.Has("ufw")
	if p.UFW.Active, p.UFW.Detail, err = ufw.Probe(ctx, r); err != nil {
		return p, err
	}
	p.Iptables.Installed = r.Has("iptables") || r.Has("iptables-legacy")
	if p.Iptables.Installed {
		if _, p.Iptables.Detail, err = iptables.Probe(ctx, r); err != nil {
			return p, err
		}
	} else {
		p.Iptables.Detail = "neither iptables nor iptables-legacy found"
	}
	return p, nil
}
