// Package firewalld is mailfw's backend for firewalld.
//
// mailfw writes nothing into zones. It owns the policy objects whose names
// start with "mailfw" (ingress zone ANY, egress zone HOST), and everything
// of the shape it writes inside them is its own: rich rules have no comment
// field, so the policy is the mark. Two policies give the two orders that
// matter: mailfw-deny (priority -100) runs before every zone, so its
// rejects beat a zone's "service smtp"; mailfw-allow (priority 100) runs
// after the zones, so a ban another tool put into a zone (fail2ban's
// firewalld actions add runtime rich rules) still holds.
//
// Read reports the runtime configuration, which is what is in force:
// mailfw's policies, the services, ports and rich rules of the zones that
// traffic can reach (never removable, Fixed), and other host policies.
// Differences from the permanent configuration on the mail ports are the
// finding [FindingRuntimePermanent].
//
// Apply changes the permanent and then the runtime configuration with one
// batched firewall-cmd call per policy and step. Only the apply that has to
// create the policies reloads firewalld (a new policy reaches the runtime
// no other way). Before it, the runtime-only entries (fail2ban's bans,
// ports added by hand, ipset entries) are written to the permanent
// configuration so that the reload keeps them in force, and taken out of it
// again afterwards; then every runtime difference the reload still caused is
// undone, and [Backend.Notes] says what was carried.
//
// Descriptions are not stored (Capabilities.Description maps every one to
// ""), and connections_per_source cannot be enforced: a rich rule's
// "limit value=" is a rate of matches shared by all sources, not a cap on
// concurrent connections per source, so Capabilities.Limit is false.
//
// Findings this backend adds: [FindingRuntimePermanent] (info when the
// difference is only runtime bans, else medium), [FindingSourceZone],
// [FindingForeignRule] (a rule in a mailfw policy that mailfw would not
// write; it is left alone), [FindingPolicyAltered] and [FindingReloadNeeded].
//
// BUG: entry descriptions are not stored; firewalld rich rules have no
// comment field and mailfw keeps no side table.
//
// BUG: the reload that creates the policies refuses to run while runtime-only
// direct rules, chains or passthroughs exist ([ErrRuntimeDirect]); runtime
// entries it carries lose any --timeout they were added with; permanent
// entries not yet in force (pending until a reload) are in force for the
// moment between the reload and their removal from the runtime; and if
// mailfw is killed during that apply, the runtime-only entries it wrote to
// the permanent configuration stay there (the error of a failed apply lists
// them).
//
// BUG: firewall-cmd exits 0 when some items of a batch fail, and execx keeps
// no stderr on success, so Apply reads the policies back (one more call per
// configuration) to find out what took.
package firewalld
