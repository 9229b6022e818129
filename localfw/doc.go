// Package localfw picks and opens the host-firewall backend of a local
// target. For type auto it probes which frontend is in charge: firewalld
// when its daemon answers, ufw when ufw is active, else iptables (nf_tables
// or legacy, whichever holds rules). The choice and its reasons are logged
// at info level and shown in the plan. Two frontends in charge at once is an
// error naming both, because rules written through either would be undone
// or shadowed by the other.
package localfw
