// Package providers connects target types to the backends that serve them.
// The cloud backends live in its subpackages (aws, alibaba); the host
// firewalls live under localfw. The contract every backend implements is
// [plan.Backend]; this package only says how one is built.
package providers
