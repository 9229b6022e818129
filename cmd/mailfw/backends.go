package main

import (
	"github.com/mailfw/mailfw/localfw"
	"github.com/mailfw/mailfw/providers"
	"github.com/mailfw/mailfw/providers/alibaba"
	"github.com/mailfw/mailfw/providers/aws"
)

// registry lists the target types this build serves.
func registry() providers.Registry {
	return providers.Registry{
		"auto":      localfw.Open,
		"iptables":  localfw.Open,
		"ufw":       localfw.Open,
		"firewalld": localfw.Open,
		"aws":       aws.Open,
		"alibaba":   alibaba.Open,
	}
}
