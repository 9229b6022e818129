package main

import (
	"github.com/mailfw/mailfw/localfw"
	"github.com/mailfw/mailfw/providers"
)

// registry lists the target types this build serves.
func registry() providers.Registry {
	return providers.Registry{
		"auto":      localfw.Open,
		"iptables":  localfw.Open,
		"ufw":       localfw.Open,
		"firewalld": localfw.Open,
	}
}
