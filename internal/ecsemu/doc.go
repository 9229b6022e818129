// Package ecsemu is an in-process emulator of the Alibaba Cloud ECS
// security-group API (RPC style, version 2014-05-26), for tests that drive
// the real github.com/aliyun/alibaba-cloud-sdk-go/services/ecs client over
// HTTP on 127.0.0.1.
//
// It decides what the wire looks like: parameters read from the URL query,
// HMAC-SHA1 signatures checked against registered access keys, JSON replies
// with the documented key case, and error bodies whose fields are all
// strings (the SDK panics on anything else). It models the semantics that
// trip providers: priorities with drop winning ties, silent duplicate adds,
// revoke by an unknown rule id failing, both paging schemes of
// DescribeSecurityGroups, NicType, tags, VPC ids, regions and a per-group
// rule quota (default 200, ingress and egress together).
//
// Tests inject faults (Throttling on the next N calls or on a seeded
// fraction of calls, server errors, latency, a broken body) and assert on
// the requests it recorded. It does not model egress authorization, prefix
// list contents, ENI-wide quotas or the location service.
//
// The wire facts follow Alibaba's ECS API reference pages for these five
// calls and what SDK v1.63 sends and accepts. Where the reference leaves a
// fact open (which code an unknown rule id gets, whether a duplicate add
// updates the description), the emulator's choice is noted at the code that
// makes it.
package ecsemu
