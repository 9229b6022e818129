// Package iptables is mailfw's backend for the host's iptables and
// ip6tables filter tables, in either mode: iptables-nft (rules kept in
// nf_tables) or iptables-legacy (x_tables).
//
// # Reading
//
// Read runs iptables-save (-t filter) for each family and flattens INPUT
// into [plan.Observed] rules in evaluation order: INPUT rule slot i has
// Order i*step (step is 10000, or a larger power of ten for very large
// tables), and the rules of a chain jumped to from slot i follow it at
// i*step + 1 + k. A jump's matches are combined with those of the rules in
// its chain, so a fail2ban chain jumped with "-p tcp -m multiport --dports
// 25,465,587" yields one deny per banned source and port. Multiport lists
// and ranges become one Observed each. Rules with matches mailfw does not
// model (an interface other than lo, conntrack, recent, limit, a negation,
// ...) are Conditional, and so are connlimit rules of others; rules for lo
// are left out. A RETURN with matches makes the rules after it in its chain
// Conditional, an unconditional one ends the chain, and a goto (-g) is
// followed like a jump. Protocols other than tcp, udp and all (icmp, ...)
// are left out, as are rules without a verdict (LOG, counters). Every
// rule outside MAILFW-INPUT is Fixed: this backend never changes it, so
// exclusive ownership removes nothing here. Both families are one scope, "INPUT";
// mailfw's chain takes the same slot in both so that the scope's
// AllowOrder and DenyOrder hold for either family. The policy of INPUT and
// the position of the jump go into State.Extra, so a saved plan goes stale
// when either moves.
//
// # Writing
//
// mailfw writes only inside its own chain, MAILFW-INPUT, plus one jump to
// it from INPUT ("-m comment --comment mailfw -j MAILFW-INPUT"). Every rule
// in the chain has the comment "mailfw" or "mailfw: <description>". Apply
// reads each family again, rewrites the whole chain and fixes the jump in
// one "iptables-restore --noflush" transaction per family (declaring the
// chain in restore input flushes it, so the rewrite is atomic), after the
// same input passed "iptables-restore --test --noflush". Both families are
// validated before either is written. When the chain would end up empty
// the jump and the chain are deleted, leaving nothing behind.
//
// NOTE: iptables-nft's --test does not check all that the commit does
// (deleting a chain another rule still jumps to passes --test and fails on
// commit; iptables-legacy catches it), so IPv6 can still fail after IPv4
// was written. Apply then returns the IPv4 changes as done and its error
// names what was applied and what was not; a rerun converges.
//
// The chain holds, in this order: rules without the mark that someone else
// put there (kept, first), then mailfw's denies, then one connlimit rule per
// limited allow ("-m connlimit --connlimit-above N --connlimit-mask 32" or
// 128 for IPv6, so the limit counts each address), then the allows. The
// connlimit rules come before every allow, not only before their own, so a
// broader allow listed earlier cannot let a limited source bypass its
// limit. Each group is sorted by port and source, so the chain's content
// depends only on the policy.
//
// NOTE: denies and connection limits use "-j REJECT --reject-with
// tcp-reset" rather than DROP. A refused mail sender, often a legitimate
// MTA, then fails at once and queues or bounces the message instead of
// waiting for a connect timeout; hiding the host gains nothing when port
// 25 is open to the rest of the world anyway.
//
// # Where the jump goes
//
// mailfw's allows must take effect when INPUT ends in a catch-all REJECT
// or has policy DROP, and must not pre-empt other tools' blocks. A
// catch-all is an INPUT rule with no source restriction and no matches
// mailfw does not model that DROPs or REJECTs TCP to a mail port (25, 465,
// 587, or a port of mailfw's rules), or jumps to a chain that ends in one.
// The jump goes immediately before the first catch-all, or at the end of
// INPUT when there is none (the policy applies after it). Everything above
// that point, such as fail2ban's jump at the top of INPUT, an SSH allow, or
// a source-specific ban, stays above the jump, so a banned address stays
// banned. A single jump that already sits before the first catch-all stays
// where it is; a jump after it (dead), or several jumps, are replaced by one
// at the right place in the same transaction. While no packet reaches the
// chain, Read reports mailfw's rules as Conditional, so the plan writes them
// again and the apply moves the jump.
//
// NOTE: INPUT is read and then written by position ("-I INPUT n"); the
// restore holds the xtables lock but the read before it does not, so a
// rule inserted into INPUT by another program in those few milliseconds
// shifts the position by one. Deletions are by rule spec, never by number.
//
// # Modes
//
// Probe and Read run iptables-nft-save and iptables-legacy-save and use the
// mode that holds rules (the one with more when both do, which is also
// reported as the finding "iptables-mixed-modes"); when neither holds any,
// the mode the system's iptables command points to. State.Kind says which:
// "iptables (nf_tables)" or "iptables (legacy)". [WithMode] skips the
// detection.
//
// # Using it
//
// New(WithLogger(l)) builds the backend for the host; WithRunner gives it
// an [execx.Runner] (tests pass one with a network-namespace prefix) and
// WithMode pins a mode. [Probe] tells whether iptables is the firewall in
// charge: it reports active when the chosen mode holds at least one IPv4
// rule in any table, and in detail the mode, the count and why that mode
// was chosen. It runs only the *-save programs.
//
// # Descriptions
//
// A description reaches iptables-restore as one quoted word (never through
// a shell); [StoredDescription] says what the kernel keeps: no control
// characters, at most 255 bytes of comment in all.
//
// BUG: saved plans go stale whenever a fail2ban ban is added or lifted,
// since the bans are part of the rules Read reports.
package iptables
