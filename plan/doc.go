// Package plan holds mailfw's model of a mail-port firewall: the policy file,
// the single-source rules it expands into, the state a backend reports, the
// diff between the two, the findings, and the plan file.
//
// plan does no I/O of its own beyond reading the policy file and the address
// lists it names. It imports no backend. Backends import plan for its types and
// implement [Backend]; the diff is computed here, once, for all of them.
package plan
