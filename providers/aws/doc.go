// Package aws is the mailfw backend for EC2 security groups.
//
// A target names groups by id (security_groups) or by tags (select.tags) in
// one or more regions; each group is one [plan.Scope] with the id
// "sg-… (region)". Credentials, region and endpoint come from the SDK's
// default chain as the AWS CLI reads them, with the target's profile,
// region(s) and endpoint taking precedence; AWS_ENDPOINT_URL_EC2 and
// AWS_ENDPOINT_URL work as they do for the CLI.
//
// Reading uses as few calls as EC2 allows: DescribeSecurityGroupRules with a
// group-id filter of up to 200 groups per call and 1000 rules per page, so
// the number of calls grows with pages of rules, not with groups. Egress
// rules are ignored. Sources are canonical CIDRs, prefix lists ("pl-…") and
// referenced groups: "sg-…" for a group of the same account as the group
// holding the rule, "sg-…/ACCOUNT" for another account's group. A policy
// must name referenced groups the same way to round-trip without a diff.
// Rules that cannot carry TCP (ICMP, other IP protocols) are not reported,
// but count against the quota.
//
// mailfw owns a rule whose description is "mailfw" or starts with
// "mailfw:", or that carries the tag managed-by=mailfw and no description;
// it writes both, the tag at creation through TagSpecifications. A tagged
// rule someone has given a description of their own is not mailfw's: the
// tag survives an edit with ModifySecurityGroupRules, the description does
// not.
//
// Writing takes one AuthorizeSecurityGroupIngress per group with all its
// additions, one UpdateSecurityGroupRuleDescriptionsIngress for
// description-only changes, and one RevokeSecurityGroupIngress for removals;
// every group's additions land before any update or removal. Before the
// first write the additions are checked against each group's quota (60 per
// family by default, the target's quota overrides; a prefix list counts its
// max entries against its family, a referenced group counts against both)
// and the whole apply is refused with a [*QuotaError] if one would pass it.
//
// A rule id outlives edits (ModifySecurityGroupRules keeps it), so before
// the updates and again before the removals the groups concerned are
// re-read, batched as Read reads them, and only rules whose protocol, port,
// source and mark are still what the plan saw are written to; the others are
// reported in a [*ChangedError] and left alone. Updates and removals then
// name the rules by properties (protocol, port, source), not by id, so an
// edit landing after the re-check cannot get the edited rule removed or
// marked: EC2 finds no rule with the planned properties. The window that
// remains is one round trip wide: between the re-check and the call another
// client may replace the rule by one with the same protocol, port and
// source (that one is removed or described, which does what the plan meant
// for that access; a removal under another id is logged), or strip or add
// the mark of the rule itself.
//
// InvalidPermission.Duplicate, and the not-found errors of revoke, mean
// another client got there first: the group is re-read and only what is
// still missing is re-issued. A write whose outcome is unknown (a transport
// error, a reply that does not parse, a server error after the retries) is
// settled by re-reading the group: each change counts as made or not by
// what the group holds, and when all are there the call's error is dropped.
// If the group cannot be read either, the changes are listed as unverified.
// Throttling is retried by the SDK's retryer (standard, or adaptive when
// retry_mode says so); groups and regions are worked on concurrently,
// bounded by Env.Parallelism. An apply that fails part-way returns an
// [*ApplyError] listing what was and was not done; a rerun converges.
//
// The SDK's HTTP client is wrapped so that a request body the SDK closes as
// soon as the reply arrives cannot make net/http drop the connection under
// the reply (which would fail the call, or retry a call EC2 already ran).
//
// BUG: the EC2 reference documents '&' as allowed in descriptions of CIDR
// sources but not of prefix-list or group sources; mailfw allows it for all
// (the live behaviour is unverified), so such a description may be refused
// by AWS at apply time for those sources only.
//
// Findings: aws-outbound-25 (info) says EC2 throttles outbound TCP 25 by
// default; aws-no-groups (medium) says the selection matched no group.
package aws
