package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Policy is a loaded, checked policy file.
type Policy struct {
	// File is the path the policy came from, or "(built-in default)".
	File      string
	Version   int
	Sources   map[string]*Source
	Allow     []Entry
	Deny      []Entry
	Targets   []Target
	Ownership Ownership
	// Digest is the SHA-256 of the file's bytes (and of every address list
	// it reads), as the plan file records it.
	Digest string
	// Default is true for the built-in policy used when no file exists.
	Default bool
}

// Source is a named address set.
type Source struct {
	Name    string
	Entries []SourceEntry
	Line    int
}

// SourceEntry is one canonical address or cloud reference of a source.
type SourceEntry struct {
	Value  string // canonical CIDR or cloud reference
	Family Family
}

// Entry is one allow or deny entry.
type Entry struct {
	Port        int
	PortName    string // as written: "smtp", "587"
	From        []string
	Limit       *Limit
	Description string
	Line        int
	Column      int
}

// Ports by name. "submissions" is the IANA name of 465; "smtps" the common one.
var portNames = map[string]int{"smtp": 25, "submission": 587, "smtps": 465, "submissions": 465}

// MailPorts are the ports mailfw looks after even when a policy names none.
var MailPorts = []int{25, 465, 587}

// builtinSources are the source names every policy has.
var builtinSources = map[string][]SourceEntry{
	"anywhere":      {{"0.0.0.0/0", IPv4}, {"::/0", IPv6}},
	"anywhere-ipv4": {{"0.0.0.0/0", IPv4}},
	"anywhere-ipv6": {{"::/0", IPv6}},
}

// TargetTypes are the target types a policy may name.
var TargetTypes = []string{"auto", "iptables", "ufw", "firewalld", "aws", "alibaba"}

// MaxPolicySize bounds the policy file and each address list it reads.
const MaxPolicySize = 64 << 20

// DefaultPolicyYAML is the built-in policy: an MX host on the local firewall.
const DefaultPolicyYAML = `version: 1
allow:
  - port: smtp
    from: [anywhere]
    description: inbound mail
  - port: submission
    from: [anywhere]
    description: mail submission
  - port: smtps
    from: [anywhere]
    description: mail submission over TLS
targets:
  - name: host
    type: auto
`

// DefaultPolicyName stands in for a file name when the built-in policy is
// in use.
const DefaultPolicyName = "(built-in default)"

// DefaultPolicy returns the built-in policy.
func DefaultPolicy() *Policy {
	p, err := ParsePolicy(DefaultPolicyName, []byte(DefaultPolicyYAML))
	if err != nil {
		panic("built-in policy: " + err.Error())
	}
	p.Default = true
	return p
}

// LoadPolicy reads and checks the policy file at path.
func LoadPolicy(path string) (*Policy, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return ParsePolicy(path, data)
}

// readLimited reads a file of at most MaxPolicySize bytes. It reads
// through a limit rather than trusting the size the file system reports,
// which is 0 for /dev/zero or a pipe.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxPolicySize {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, MaxPolicySize>>20)
	}
	return data, nil
}

// PolicyError is one mistake in a policy file, located to its line and
// column.
type PolicyError struct {
	File   string
	Line   int
	Column int
	Field  string // "allow[1].port"
	Msg    string // what is wrong and how to fix it
}

func (e *PolicyError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return loc + ": " + e.Msg
}

// PolicyErrors is every mistake found in one policy file, in file order.
type PolicyErrors []*PolicyError

func (es PolicyErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// AsPolicyErrors returns the policy mistakes err holds, if any.
func AsPolicyErrors(err error) (PolicyErrors, bool) {
	var es PolicyErrors
	if errors.As(err, &es) {
		return es, true
	}
	var e *PolicyError
	if errors.As(err, &e) {
		return PolicyErrors{e}, true
	}
	return nil, false
}

func digestOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
