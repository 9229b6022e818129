package main

import (
	"github.com/mailfw/mailfw/localfw"
	"github.com/mailfw/mailfw/localfw/firewalld"
	"github.com/mailfw/mailfw/localfw/iptables"
	"github.com/mailfw/mailfw/localfw/ufw"
	"github.com/mailfw/mailfw/plan"
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

// capabilitiesOf says what a target type can express, without reading or
// contacting anything, so validate can check a policy against its targets.
// For auto it assumes iptables, which can express what ufw and firewalld
// can and more; plan checks again against the backend really chosen.
func capabilitiesOf(typ string) plan.Capabilities {
	switch typ {
	case "ufw":
		return ufw.New().Capabilities()
	case "firewalld":
		return firewalld.New().Capabilities()
	case "aws":
		return new(aws.Backend).Capabilities()
	case "alibaba":
		return new(alibaba.Backend).Capabilities()
	}
	return iptables.New().Capabilities()
}
