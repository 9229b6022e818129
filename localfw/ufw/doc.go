// Package ufw is mailfw's backend for ufw, the Uncomplicated Firewall.
//
// Reading: the rules are taken from ufw's own record of them, the
// "### tuple ###" lines of /etc/ufw/user.rules and user6.rules (the exact
// match, action and hex-encoded comment of every rule ufw added), together
// with /etc/default/ufw (IPV6=, DEFAULT_INPUT_POLICY=) and the application
// profiles of /etc/ufw/applications.d. Whether ufw is active comes from
// "ufw status verbose", its documented view; that is the one program Read
// runs.
//
// Mapping: "allow" is an allow, "deny" and "reject" are denies, and "limit"
// (ufw's rate limit of 6 new connections in 30 s per source) is an allow
// marked Conditional, because it is not connections_per_source; so
// Capabilities.Limit is false. Profile rules ("Postfix", "Postfix
// Submission") are reported with the ports ufw recorded for them, and their
// Origin names the profile. A rule with an interface, a source port, a
// destination address or a source profile is Conditional. Route and
// outbound rules are not inbound filtering and are left out. A rule with
// several ports is reported once per port, never as mailfw's, and is Fixed.
// Order is the rule's position in its family's file plus one; mailfw's
// denies land at order 1 and its allows after every existing rule.
//
// Writing: every change is one ufw command, run with an argument list,
// carrying the comment "mailfw" or "mailfw: <description>". Denies are
// written with "ufw prepend", which puts an IPv4 rule before every IPv4
// rule and an IPv6 rule before every IPv6 rule. ("ufw insert 1" cannot place
// an IPv6 rule: ufw 0.36.2 answers "Invalid position '1'"; "insert N"
// works for IPv6 only with N greater than the number of IPv4 rules.) Allows
// are appended. Removal is by rule specification with the rule's own
// comment ("ufw delete allow proto tcp from ... comment 'mailfw'"), never by
// number. The two halves of an "anywhere" rule share one call without
// "from", which ufw writes for both families.
//
// NOTE: mailfw does not edit user.rules and run "ufw reload" to batch
// changes: ufw's reload stops the firewall (its init script sets the
// built-in chains' policies to ACCEPT) before starting it again, which
// leaves the host open for a moment, and it would mean re-implementing
// ufw's private translation of tuples into iptables lines.
//
// BUG: ufw 0.36 takes no lock for rule commands: each one reads, changes
// and rewrites user.rules. A ufw command run by another tool (fail2ban's
// ufw action) while mailfw applies can lose one of the two changes. mailfw
// re-reads the files after each of its calls and fails on a lost change of
// its own; it cannot see another tool's lost change.
//
// Findings this package adds: ufw-inactive (high), ufw-default-allow
// (high), ufw-rule-unreadable (medium), ufw-rule-ignored (info),
// ufw-app-missing (medium), ufw-app-stale (low), ufw-app-unreadable (low).
// Apply refuses to write while any ufw-rule-unreadable line exists.
package ufw
