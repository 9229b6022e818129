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
// model (an interface other than lo, a destination, TCP flags, recent,
// limit, a negation, ...) are Conditional, and so are connlimit rules of
// others; rules for lo are left out. A conntrack or state match that lets
// NEW through is no condition: "-m state --state NEW --dport 25 -j ACCEPT"
// opens port 25 as plainly as the rule without it. A rule that can never
// see the first packet of a new connection (a state list without NEW and
// UNTRACKED, such as RELATED,ESTABLISHED or INVALID, or TCP flags a bare
// SYN lacks, such as "! --syn") opens and closes nothing, and is left out.
// A source is never widened: one plan cannot canonicalise but netip reads
// (an IPv4-mapped "::ffff:192.0.2.1/128") is kept as netip prints it, and
// a rule whose source is restricted in a way mailfw cannot express (an
// ipset, an address range, a recent list, a MAC address, a source that
// does not parse) is left out rather than read as "anywhere"; a negated
// source ("! -s X") reads as the whole family, Conditional. A RETURN
// with matches makes the rules after it in its chain Conditional, an
// unconditional one ends the chain, and a goto (-g) is followed like a
// jump. Protocols other than tcp, udp and all (icmp, ...) are left out, as
// are rules without a verdict (LOG, counters), except in MAILFW-INPUT:
// there a marked rule not in mailfw's form is reported with its own
// protocol, ports and source, and with its target as the verdict ("log")
// when that target decides nothing, so the plan removes it. Every rule
// outside MAILFW-INPUT is Fixed: this backend never changes it, so
// exclusive ownership removes nothing here. Rules inside the ban chains of
// other tools (chains named f2b-*, fail2ban-*, sshguard*, crowdsec*) are
// also Volatile, so bans coming and going do not make a saved plan stale.
// Both families are one scope, "INPUT"; mailfw's chain takes the same slot
// in both so that the scope's AllowOrder and DenyOrder hold for either
// family. The policy of INPUT and the position of the jump go into
// State.Extra, so a saved plan goes stale when either moves.
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
// the jump and the chain are deleted, leaving nothing behind, unless a
// rule outside INPUT (in FORWARD, in a chain of its own) jumps to
// MAILFW-INPUT: the kernel refuses to delete a chain in use, so the chain
// is then flushed and kept, and Read reports the finding
// "iptables-foreign-jump-to-chain".
//
// NOTE: iptables-nft's --test does not check all that the commit does
// (deleting a chain another rule still jumps to passes --test and fails on
// commit; iptables-legacy catches it), and another program may change a
// table between the read and the commit, so IPv6 can still fail after
// IPv4 was written. Apply then returns the IPv4 changes as done and its error
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
// NOTE: unmarked rules in MAILFW-INPUT move to the top of the chain on the
// next rewrite, whatever their place among mailfw's rules was; their own
// order is kept. Putting them first means that a ban someone added there
// still wins over mailfw's allows; it also means that an unmarked ACCEPT
// there wins over mailfw's denies. Read reports them as the finding
// "iptables-foreign-rule-in-chain".
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
// or has policy DROP, and must not pre-empt other tools' blocks: bans come
// first, always. For the placement, each INPUT rule that can match a new
// TCP connection to a mail port (25, 465, 587, or a port of mailfw's rules)
// is one of three things:
//
//   - a catch-all: a DROP or REJECT that every source can meet. It may
//     have matches that select by something every sender has: an
//     interface ("-i eth0 -j REJECT"), a destination, a conntrack state
//     that includes NEW, TCP flags a SYN has ("--syn"), a destination
//     address type or set. A jump to a chain that reaches a catch-all
//     before any ban is one too.
//   - a ban: a DROP or REJECT for some sources only ("-s X", an ipset, a
//     recent list, a connection limit, a rate or any match mailfw does not
//     know), or a jump to a chain that holds one before its catch-all or
//     its end (fail2ban's chains).
//   - neither: allows, LOG, rules that never see a new connection, and
//     rules for traffic no mail sender sends to the host (to a loopback
//     destination such as "! -i lo -d 127.0.0.0/8 -j REJECT", broadcast,
//     multicast).
//
// The jump goes immediately before the first catch-all, or at the end of
// INPUT when there is none (the policy applies after it), and so after
// every ban above that point. A jump to a chain that bans some sources and
// then drops or rejects everyone else ("-s X -j DROP", "-s 10.0.0.0/8 -j
// ACCEPT", "-j REJECT") is a ban: mailfw's jump stays after it, which
// leaves mailfw's allows for those ports dead rather than bypass the bans.
// Read reports that as the finding "iptables-ban-chain-closes-port"; the
// plan's "dead-allow" says which allows it kills when the chain's catch-all
// has no conditions. mailfw does not edit the chain; ending it in a RETURN
// instead of the REJECT lets mailfw's rules decide.
//
// Only "-j MAILFW-INPUT" with no match but a comment counts as mailfw's
// jump. A jump to the chain with matches of its own (a source, a port, an
// interface) or a goto lets only some packets in, so it is deleted (by
// rule spec) and the plain jump inserted in the same transaction. A single
// plain jump that sits after the last ban and before the first catch-all
// stays where it is; one above a ban or after the catch-all, several
// jumps, or any jump with matches are replaced by one at the right place.
// While the jump is not so placed, Read reports mailfw's rules as
// Conditional (with the finding "iptables-chain-not-reached"), so the plan
// writes them again and the apply moves the jump.
//
// NOTE: INPUT is read and then written by position ("-I INPUT n"); the
// restore holds the xtables lock but the read before it does not, so a
// rule inserted into INPUT by another program in those few milliseconds
// shifts the position by one. Deletions are by rule spec, never by number.
//
// # Modes
//
// Probe and Read run iptables-nft-save, iptables-legacy-save,
// ip6tables-nft-save and ip6tables-legacy-save and use the mode that holds
// rules, counting both families (the one with more when both do, which is
// also reported, with the counts per family, as the finding
// "iptables-mixed-modes"); when neither holds any, the mode the system's
// iptables command points to. State.Kind says which: "iptables
// (nf_tables)" or "iptables (legacy)". [WithMode] skips the detection.
//
// # Using it
//
// New(WithLogger(l)) builds the backend for the host; WithRunner gives it
// an [execx.Runner] (tests pass one with a network-namespace prefix) and
// WithMode pins a mode. [Probe] tells whether iptables is the firewall in
// charge: it reports active when the chosen mode holds at least one rule
// in any table of either family, and in detail the mode, the counts per
// family and why that mode was chosen. It runs only the *-save programs.
//
// # Descriptions
//
// A description reaches iptables-restore as one quoted word (never through
// a shell); [StoredDescription] says what the kernel keeps: no control
// characters, at most 255 bytes of comment in all.
//
// BUG: a goto (-g) from INPUT to a chain that has no verdict for a packet
// ends in INPUT's policy, not in the rules after the goto; placement reads
// it as a jump, so a policy DROP behind such a goto can leave mailfw's
// allows dead without a finding.
package iptables
