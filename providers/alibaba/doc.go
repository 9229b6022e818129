// Package alibaba is the backend of target type "alibaba": the inbound rules
// of Alibaba Cloud ECS security groups, through the official
// github.com/aliyun/alibaba-cloud-sdk-go ECS client.
//
// It decides how ECS rules read as [plan.Observed] values and how planned
// changes are written; the diff itself is plan's.
//
//   - Groups are named (security_groups:) or selected by tags and,
//     optionally, a VPC (select:), in the target's one region. Each group is
//     one [plan.Scope] with the id "sg-... (region)". Groups are read and
//     written concurrently, at most Env.Parallelism (default 10) at once.
//   - Priority 1-100 is evaluated lowest first and, at one priority, drop
//     wins over accept. Order encodes both: priority*2 for drop and
//     priority*2+1 for accept. Rules mailfw writes carry the target's
//     priority (default 1), so a drop at that priority or better shadows a
//     planned allow; ShadowedAllowIsError makes the planner refuse such a
//     plan, because ECS would accept the rule and it would do nothing.
//   - Rules mailfw writes are described "mailfw" or "mailfw: <description>".
//     ECS allows 512 characters there; [Description] says what it refuses.
//   - Port ranges ("1/65535") and protocol ALL ("-1/-1") are read as
//     granting every port in them. ICMP and GRE rules, egress rules and
//     rules that cannot be parsed are left out.
//   - NicType: VPC groups hold intranet rules only; in a classic-network
//     group mailfw writes internet rules, and an intranet rule from an
//     address is Conditional (it never sees traffic from the internet).
//   - Quota: ingress and egress rules together, 200 a group unless the
//     target sets quota:. Apply checks every group before writing anything
//     and refuses the whole apply when one would overflow.
//   - A duplicate AuthorizeSecurityGroup succeeds silently and returns no
//     rule id, so Apply reads each group back and returns only the changes
//     it sees in effect. Throttling is retried here with exponential backoff
//     (the SDK never retries it); a failure part-way is an [*ApplyError]
//     that lists what was made and what was not.
//
// Credentials come, in this order, from: the profile the target names
// (profile:) in the aliyun CLI's ~/.aliyun/config.json, alone; else the
// environment (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET,
// optionally ALIBABA_CLOUD_SECURITY_TOKEN); else that file's current profile
// (or ALIBABA_CLOUD_PROFILE); else the ECS RAM role of the instance
// (ALIBABA_CLOUD_ECS_METADATA names a role; ALIBABA_CLOUD_ECS_METADATA_DISABLED
// =true turns this step off). Profiles of mode AK, StsToken and EcsRamRole
// are understood. Errors name the source, never a secret.
//
// endpoint: overrides the ECS endpoint, as host[:port] (HTTPS) or a URL.
//
// Findings this package adds: "alibaba-outbound-25" (info), because ECS
// blocks outbound TCP 25 by default and a mail server there cannot deliver
// directly until Alibaba lifts the block.
//
// BUG: changing priority: in a target leaves the rules mailfw already wrote
// at their old priority: the diff compares rules without their priority.
// Remove-and-add cannot fix it, because ECS takes a rule at another priority
// for the same rule (the add is a silent no-op, then the removal closes the
// port); it needs an update that carries the priority (ModifySecurityGroupRule
// can set it).
//
// BUG: plan's quota check counts each family against the quota on its own,
// while ECS counts all rules together; Apply catches what the plan lets
// through, so such a plan fails at apply time with nothing changed.
package alibaba
