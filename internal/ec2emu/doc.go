// Package ec2emu is an in-process emulator of the EC2 security-group API that
// the real aws-sdk-go-v2 accepts. Tests start it on 127.0.0.1 with [New],
// point the SDK's BaseEndpoint (or AWS_ENDPOINT_URL_EC2) at [Server.URL] and
// then assert on the emulator's state and on the requests it logged.
//
// What it models: the EC2 Query protocol (form-encoded POST, flattened lists
// indexed from 1, XML replies with <item> lists, error XML with the real
// codes and HTTP statuses), SigV4 credential scopes (the region comes from
// the scope and state is kept per region), security groups with their default
// egress rule, one rule per source, duplicate and not-found semantics,
// per-family quotas, tags and TagSpecifications, filters, MaxResults and
// NextToken paging, managed prefix lists and referenced groups. Every request
// is validated first and then applied whole or not at all.
//
// Fault injection covers throttling (the next N calls, or a seeded random
// fraction of calls), arbitrary error codes, per-call latency, truncated
// bodies, UnauthorizedOperation per action, and hooks that run just before a
// chosen action so a test can change the state at a precise moment.
//
// [WithDefaultVPC] makes a revoke by properties behave as in a default VPC
// (unmatched permissions listed in unknownIpPermissionSet, not refused).
//
// What it leaves out: instances, ENIs, VPC creation, the other default-VPC
// behaviours and every action not listed in [Server.Actions]. Where AWS behaviour is unverified (see the project's
// reference/cloud-api.md), the emulator takes the stricter reading.
package ec2emu
