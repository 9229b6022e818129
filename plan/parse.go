package plan

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser walks the YAML tree of one policy file, collecting every mistake
// rather than stopping at the first.
type parser struct {
	file    string
	dir     string
	errs    PolicyErrors
	digests [][]byte
}

func (ps *parser) fail(n *yaml.Node, field, format string, args ...any) {
	e := &PolicyError{File: ps.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	ps.errs = append(ps.errs, e)
}

// ParsePolicy checks data as the policy file named filename. Relative
// {file: ...} lists are read from filename's directory.
func ParsePolicy(filename string, data []byte) (*Policy, error) {
	ps := &parser{file: filename, dir: filepath.Dir(filename), digests: [][]byte{data}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, ps.yamlError(err)
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return nil, PolicyErrors{{File: filename, Line: second.Line, Column: second.Column,
			Msg: "the file holds a second YAML document (after ---); a policy is one document"}}
	}
	p := &Policy{File: filename, Sources: map[string]*Source{}, Ownership: Managed}
	if len(doc.Content) == 0 {
		ps.fail(nil, "", "the file is empty; start it with \"version: 1\" (see mailfw validate --help)")
		return nil, ps.errs
	}
	root := doc.Content[0]
	fields := ps.mapping(root, "", []string{"version", "sources", "allow", "deny", "targets", "ownership"})
	ps.version(p, fields["version"], root)
	if n := fields["sources"]; n != nil {
		ps.sources(p, n)
	}
	if n := fields["allow"]; n != nil {
		p.Allow = ps.entries(p, n, "allow")
	}
	if n := fields["deny"]; n != nil {
		p.Deny = ps.entries(p, n, "deny")
	}
	if len(p.Allow) == 0 && len(p.Deny) == 0 && fields["allow"] == nil {
		ps.fail(root, "allow", "the policy has no allow entries; add at least one, for example \"- port: smtp\" with \"from: [anywhere]\"")
	}
	ps.targets(p, fields["targets"], root)
	if n := fields["ownership"]; n != nil {
		switch Ownership(n.Value) {
		case Managed, Exclusive:
			p.Ownership = Ownership(n.Value)
		default:
			ps.fail(n, "ownership", "%q is not an ownership mode; use managed (the default) or exclusive", n.Value)
		}
	}
	if len(ps.errs) > 0 {
		sortErrors(ps.errs)
		return nil, ps.errs
	}
	p.Digest = digestOf(ps.digests...)
	return p, nil
}

// sortErrors puts mistakes in file order; those of other files (address
// lists) come after the policy's own.
func sortErrors(es PolicyErrors) {
	slices.SortStableFunc(es, func(a, b *PolicyError) int {
		if a.File != b.File {
			if a.File == es[0].File {
				return -1
			}
			return strings.Compare(a.File, b.File)
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (ps *parser) yamlError(err error) error {
	msg := err.Error()
	hint := " (the file is not valid YAML)"
	if strings.Contains(msg, "cannot start any token") {
		hint = " (the file is not valid YAML; is there a tab? YAML indents with spaces only)"
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return PolicyErrors{{File: ps.file, Line: line, Column: 1, Msg: m[2] + hint}}
	}
	return PolicyErrors{{File: ps.file, Msg: strings.TrimPrefix(msg, "yaml: ") + hint}}
}

// mapping checks that n is a mapping with only the allowed keys and
// returns its values by key.
func (ps *parser) mapping(n *yaml.Node, field string, allowed []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		ps.fail(n, field, "expected a mapping of keys (%s), found %s", strings.Join(allowed, ", "), kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := join(field, k.Value)
		if !slices.Contains(allowed, k.Value) {
			ps.fail(k, f, "unknown key %q; the keys allowed here are %s%s", k.Value,
				strings.Join(allowed, ", "), suggest(k.Value, allowed))
			continue
		}
		if _, dup := out[k.Value]; dup {
			ps.fail(k, f, "%q is given twice; keep one", k.Value)
			continue
		}
		out[k.Value] = v
	}
	return out
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// suggest names the allowed word closest to got, when one is close enough
// to be a likely typo.
func suggest(got string, allowed []string) string {
	best, bestDist := "", 3
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(got), a); d < bestDist {
			best, bestDist = a, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours ("form" is
// one step from "from").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func (ps *parser) version(p *Policy, n, root *yaml.Node) {
	if n == nil {
		ps.fail(root, "version", "the policy has no version; add \"version: 1\" as the first line")
		return
	}
	if n.Kind != yaml.ScalarNode || n.Value != "1" {
		ps.fail(n, "version", "version %s is not supported; this mailfw reads version 1", kindName(n))
		return
	}
	p.Version = 1
}

var sourceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

func (ps *parser) sources(p *Policy, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		ps.fail(n, "sources", "expected a mapping of names to address lists, found %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "sources." + k.Value
		switch {
		case !sourceName.MatchString(k.Value):
			ps.fail(k, field, "%q is not a usable name; start with a letter, then letters, digits, '_', '-' or '.'", k.Value)
			continue
		case builtinSources[k.Value] != nil:
			ps.fail(k, field, "%q is a built-in source name; pick another name", k.Value)
			continue
		case p.Sources[k.Value] != nil:
			ps.fail(k, field, "source %q is defined twice; merge the two lists", k.Value)
			continue
		}
		src := &Source{Name: k.Value, Line: k.Line}
		switch v.Kind {
		case yaml.SequenceNode:
			for j, item := range v.Content {
				f := fmt.Sprintf("%s[%d]", field, j)
				if item.Kind != yaml.ScalarNode {
					ps.fail(item, f, "expected an IP, a CIDR or a cloud reference, found %s", kindName(item))
					continue
				}
				ps.addSource(src, item, f, item.Value)
			}
		case yaml.MappingNode:
			fields := ps.mapping(v, field, []string{"file"})
			if fn := fields["file"]; fn != nil {
				ps.sourceFile(src, fn, field+".file")
			}
		default:
			ps.fail(v, field, "expected a list of addresses or {file: PATH}, found %s", kindName(v))
		}
		p.Sources[k.Value] = src
	}
}

func (ps *parser) addSource(src *Source, n *yaml.Node, field, value string) {
	canon, fam, err := CanonicalSource(value)
	if err != nil {
		ps.fail(n, field, "%v; write an address such as 198.51.100.10, a CIDR such as 2001:db8::/32, or a cloud reference (sg-..., pl-...)", err)
		return
	}
	src.Entries = append(src.Entries, SourceEntry{Value: canon, Family: fam})
}

func (ps *parser) sourceFile(src *Source, n *yaml.Node, field string) {
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		ps.fail(n, field, "expected the path of an address list, found %s; write {file: drop.txt}", kindName(n))
		return
	}
	path := n.Value
	if !filepath.IsAbs(path) {
		path = filepath.Join(ps.dir, path)
	}
	data, err := readLimited(path)
	if err != nil {
		ps.fail(n, field, "cannot read the address list: %v; check the path (relative paths start at the policy file's directory)", err)
		return
	}
	ps.digests = append(ps.digests, data)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexAny(text, "#;"); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		canon, fam, err := CanonicalSource(text)
		if err != nil || fam == FamilyAny {
			if err == nil {
				err = fmt.Errorf("%q is a cloud reference, which an address list cannot hold", text)
			}
			ps.errs = append(ps.errs, &PolicyError{File: path, Line: line, Column: 1,
				Field: "(address list of " + src.Name + ")",
				Msg:   err.Error() + "; one IP or CIDR a line, '#' or ';' starts a comment"})
			continue
		}
		src.Entries = append(src.Entries, SourceEntry{Value: canon, Family: fam})
	}
	if err := sc.Err(); err != nil {
		ps.fail(n, field, "reading the address list %s: %v (after line %d; a line may be at most 1 MiB)", path, err, line)
	}
}

func (ps *parser) entries(p *Policy, n *yaml.Node, section string) []Entry {
	if n.Kind != yaml.SequenceNode {
		ps.fail(n, section, "expected a list of entries (- port: ..., from: [...]), found %s", kindName(n))
		return nil
	}
	keys := []string{"port", "from", "description", "limit"}
	if section == "deny" {
		keys = keys[:3]
	}
	var out []Entry
	for i, item := range n.Content {
		field := fmt.Sprintf("%s[%d]", section, i)
		fields := ps.mapping(item, field, keys)
		e := Entry{Line: item.Line, Column: item.Column}
		ok := ps.port(&e, fields["port"], item, field)
		ok = ps.from(p, &e, fields["from"], item, field) && ok
		if ok && section == "allow" && len(p.entriesOf(e.From)) == 0 {
			// An empty list (a truncated file, say) must not silently
			// close a port mailfw opened before.
			ps.fail(fields["from"], field+".from", "every source named here is empty, so this entry would allow nothing "+
				"and mailfw would remove the rules it made for it; add addresses or remove the entry")
			ok = false
		}
		if d := fields["description"]; d != nil {
			if d.Kind != yaml.ScalarNode {
				ps.fail(d, field+".description", "expected text, found %s", kindName(d))
			}
			e.Description = d.Value
		}
		if l := fields["limit"]; l != nil {
			e.Limit = ps.limit(l, field+".limit")
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

func (ps *parser) port(e *Entry, n, item *yaml.Node, field string) bool {
	if n == nil {
		ps.fail(item, field+".port", "the entry has no port; add \"port: smtp\", \"submission\", \"smtps\" or a number")
		return false
	}
	field += ".port"
	if n.Kind != yaml.ScalarNode {
		ps.fail(n, field, "expected one port, found %s; write one entry per port", kindName(n))
		return false
	}
	e.PortName = n.Value
	if v, ok := portNames[strings.ToLower(n.Value)]; ok {
		e.Port = v
		return true
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || strings.TrimLeft(n.Value, "0123456789") != "" {
		ps.fail(n, field, "%q is not a port; use smtp (25), submission (587), smtps (465) or a number from 1 to 65535%s",
			n.Value, suggest(n.Value, []string{"smtp", "submission", "smtps", "submissions"}))
		return false
	}
	if v < 1 || v > 65535 {
		ps.fail(n, field, "%d is outside 1-65535; use a port number in that range", v)
		return false
	}
	e.Port = v
	return true
}

func (ps *parser) from(p *Policy, e *Entry, n, item *yaml.Node, field string) bool {
	if n == nil {
		ps.fail(item, field+".from", "the entry has no from; add for example \"from: [anywhere]\" or a source name")
		return false
	}
	field += ".from"
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	if len(items) == 0 {
		ps.fail(n, field, "the list is empty; name at least one source")
		return false
	}
	ok := true
	for j, it := range items {
		f := fmt.Sprintf("%s[%d]", field, j)
		if it.Kind != yaml.ScalarNode {
			ps.fail(it, f, "expected a source name or an address, found %s", kindName(it))
			ok = false
			continue
		}
		if builtinSources[it.Value] != nil || p.Sources[it.Value] != nil {
			e.From = append(e.From, it.Value)
			continue
		}
		canon, _, err := CanonicalSource(it.Value)
		if err == nil {
			e.From = append(e.From, canon)
			continue
		}
		if looksLikeAddress(it.Value) {
			ps.fail(it, f, "%v; write an address such as 198.51.100.10 or a CIDR such as 2001:db8::/32", err)
			ok = false
			continue
		}
		ps.fail(it, f, "unknown source %q; define it under sources:, or use anywhere, anywhere-ipv4, anywhere-ipv6, an IP or a CIDR%s",
			it.Value, suggest(it.Value, sourceNames(p)))
		ok = false
	}
	return ok
}

// looksLikeAddress tells a mistyped address from a mistyped source name.
func looksLikeAddress(s string) bool {
	return strings.ContainsAny(s, "/:") || (s != "" && s[0] >= '0' && s[0] <= '9')
}

func (p *Policy) entriesOf(names []string) []SourceEntry {
	var out []SourceEntry
	for _, n := range names {
		out = append(out, p.resolve(n)...)
	}
	return out
}

func sourceNames(p *Policy) []string {
	names := []string{"anywhere", "anywhere-ipv4", "anywhere-ipv6"}
	for n := range p.Sources {
		names = append(names, n)
	}
	return names
}

func (ps *parser) limit(n *yaml.Node, field string) *Limit {
	fields := ps.mapping(n, field, []string{"connections_per_source"})
	c := fields["connections_per_source"]
	if c == nil {
		if n.Kind == yaml.MappingNode {
			ps.fail(n, field, "a limit needs connections_per_source, for example {connections_per_source: 10}")
		}
		return nil
	}
	v, err := strconv.Atoi(c.Value)
	if err != nil || v < 1 || v > 65535 {
		ps.fail(c, field+".connections_per_source", "%s is not a connection count; use a whole number from 1 to 65535", kindName(c))
		return nil
	}
	return &Limit{ConnectionsPerSource: v}
}
