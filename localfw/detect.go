package localfw

import (
	"fmt"
	"strings"
)

// Probe is what one frontend's probe found.
type Probe struct {
	// Installed is false when the frontend's program is missing.
	Installed bool
	// Active is true when the frontend is in charge of the host's rules.
	Active bool
	// Detail says what the probe saw, for logs and errors.
	Detail string
}

// Probes are the results of probing every frontend.
type Probes struct {
	Firewalld, UFW, Iptables Probe
}

// Choice is the backend a local target uses, and why.
type Choice struct {
	Type   string // iptables, ufw or firewalld
	Reason string
}

// Pick decides the backend of a local target of type typ ("auto",
// "iptables", "ufw" or "firewalld") from the probe results. It is a pure
// function so every combination can be tested without a firewall.
func Pick(typ string, p Probes, force bool) (Choice, error) {
	switch typ {
	case "auto":
		return pickAuto(p)
	case "iptables":
		var others []string
		if p.Firewalld.Active {
			others = append(others, "firewalld ("+p.Firewalld.Detail+")")
		}
		if p.UFW.Active {
			others = append(others, "ufw ("+p.UFW.Detail+")")
		}
		if !p.Iptables.Installed {
			return Choice{}, fmt.Errorf("iptables is not installed (%s); install the iptables package", p.Iptables.Detail)
		}
		if len(others) > 0 && !force {
			return Choice{}, fmt.Errorf("%s manages this host's firewall, and rules written with iptables behind its back "+
				"are lost when it reloads; use type: %s (or auto) for this target, or pass --force to write iptables rules anyway",
				strings.Join(others, " and "), firstWord(others[0]))
		}
		reason := "the target says type: iptables"
		if len(others) > 0 {
			reason += "; --force given although " + strings.Join(others, " and ") + " is in charge"
		}
		return Choice{"iptables", reason}, nil
	case "ufw":
		if !p.UFW.Installed {
			return Choice{}, fmt.Errorf("ufw is not installed (%s); install the ufw package or use another target type", p.UFW.Detail)
		}
		return Choice{"ufw", "the target says type: ufw"}, nil
	case "firewalld":
		if !p.Firewalld.Active {
			return Choice{}, fmt.Errorf("firewalld is not running (%s); start it (systemctl start firewalld) or use another target type", p.Firewalld.Detail)
		}
		return Choice{"firewalld", "the target says type: firewalld"}, nil
	}
	return Choice{}, fmt.Errorf("%q is not a local target type", typ)
}

func pickAuto(p Probes) (Choice, error) {
	switch {
	case p.Firewalld.Active && p.UFW.Active:
		return Choice{}, fmt.Errorf("both firewalld (%s) and ufw (%s) are active; they overwrite each other's rules: "+
			"disable one of them, or name the one you mean with type: firewalld or type: ufw", p.Firewalld.Detail, p.UFW.Detail)
	case p.Firewalld.Active:
		return Choice{"firewalld", "firewalld answers: " + p.Firewalld.Detail}, nil
	case p.UFW.Active:
		return Choice{"ufw", "ufw is active: " + p.UFW.Detail}, nil
	case p.Iptables.Installed:
		why := "neither firewalld nor ufw is in charge"
		if p.UFW.Installed {
			why += " (ufw is installed but inactive)"
		}
		return Choice{"iptables", why + "; " + p.Iptables.Detail}, nil
	}
	return Choice{}, fmt.Errorf("found no firewall to manage: firewalld is not running, ufw is not active, and iptables is not installed (%s); "+
		"install iptables (apt-get install iptables) or name a target type", p.Iptables.Detail)
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}
