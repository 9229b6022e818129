// Package sandbox gives tests real network namespaces to run host firewalls
// in, so that no test ever changes the firewall of the machine it runs on.
//
// Tests that need root or a binary call [Require]: it skips the test with
// the reason, except when CI=true, where a missing prerequisite fails it.
package sandbox
