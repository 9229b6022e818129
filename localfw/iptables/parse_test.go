package iptables

import (
	"fmt"
	"github.com/mailfw/mailfw/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mailfw/mailfw/plan"
)

func readTable(t *testing.T, name string, f plan.Family) *table {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := parseSave(data, f)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return tb
}

func TestSplitArgs_readsSaveQuoting(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"bare", "-A INPUT -j ACCEPT", []string{"-A", "INPUT", "-j", "ACCEPT"}},
		{"quoted-space", `--comment "mailfw: office clients"`, []string{"--comment", "mailfw: office clients"}},
		{"escapes", `--comment "a \"b\" \'c\' \\d"`, []string{"--comment", `a "b" 'c' \d`}},
		{"non-ascii", `--comment "中 é"`, []string{"--comment", "中 é"}},
		{"empty-quoted", `--comment ""`, []string{"--comment", ""}},
		{"shell-chars", "--comment \"$(x) `y` ;|&<>\"", []string{"--comment", "$(x) `y` ;|&<>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitArgs(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
	if _, err := splitArgs(`--comment "open`); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}

func TestQuoteArg_roundTripsThroughSplitArgs(t *testing.T) {
	for _, s := range []string{"mailfw", "mailfw: x", `a"b`, `a\b`, "it's", "", "中", "-x", "#h", "tab\tx"} {
		got, err := splitArgs("--comment " + quoteArg(s))
		if err != nil || len(got) != 2 || got[1] != s {
			t.Errorf("quoteArg(%q) = %s read back as %q (%v)", s, quoteArg(s), got, err)
		}
	}
	if quoteArg("mailfw") != "mailfw" || quoteArg("mailfw: x") != `"mailfw: x"` || quoteArg("0.0.0.0/0") != "0.0.0.0/0" {
		t.Error("quoting differs from iptables-save's")
	}
}

func TestParseRule_modelsWhatMailfwUnderstands(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		src      string
		proto    string
		ports    []portRange
		target   string
		cond     bool
		loopback bool
	}{
		{"ssh", "-p tcp -m tcp --dport 22 -j ACCEPT", "", "tcp", []portRange{{22, 22}}, "ACCEPT", false, false},
		{"multiport", "-s 192.0.2.7/32 -p tcp -m multiport --dports 25,465 -j ACCEPT", "192.0.2.7/32", "tcp",
			[]portRange{{25, 25}, {465, 465}}, "ACCEPT", false, false},
		{"range", "-p tcp -m tcp --dport 1000:2000 -j ACCEPT", "", "tcp", []portRange{{1000, 2000}}, "ACCEPT", false, false},
		{"open-range", "-p tcp -m tcp --dport :1024 -j DROP", "", "tcp", []portRange{{1, 1024}}, "DROP", false, false},
		{"conntrack", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "", "", nil, "ACCEPT", true, false},
		{"loopback", "-i lo -j ACCEPT", "", "", nil, "ACCEPT", false, true},
		{"interface", "-i eth0 -p tcp -m tcp --dport 25 -j ACCEPT", "", "tcp", []portRange{{25, 25}}, "ACCEPT", true, false},
		{"negated-source", "! -s 192.0.2.0/24 -p tcp -m tcp --dport 26 -j ACCEPT", "192.0.2.0/24", "tcp",
			[]portRange{{26, 26}}, "ACCEPT", true, false},
		{"negated-port", "-p tcp -m tcp ! --dport 25 -j DROP", "", "tcp", []portRange{{25, 25}}, "DROP", true, false},
		{"limit", "-p tcp -m tcp --dport 25 -m limit --limit 5/min -j ACCEPT", "", "tcp", []portRange{{25, 25}},
			"ACCEPT", true, false},
		{"syn", "-p tcp -m tcp --dport 25 --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT", "", "tcp",
			[]portRange{{25, 25}}, "ACCEPT", true, false},
		{"destination", "-d 192.0.2.1/32 -p tcp -m tcp --dport 25 -j ACCEPT", "", "tcp", []portRange{{25, 25}},
			"ACCEPT", true, false},
		{"world-source", "-s 0.0.0.0/0 -j REJECT --reject-with icmp-host-prohibited", "", "", nil, "REJECT", false, false},
		{"jump", "-p tcp -m multiport --dports 25,465,587 -j f2b-postfix", "", "tcp",
			[]portRange{{25, 25}, {465, 465}, {587, 587}}, "f2b-postfix", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := splitArgs(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			r := parseRule("INPUT", args)
			got := fmt.Sprint(r.m.src, r.m.proto, r.m.ports, r.target, r.conditional(), r.loopback)
			want := fmt.Sprint(tt.src, tt.proto, tt.ports, tt.target, tt.cond, tt.loopback)
			if got != want {
				t.Errorf("got %s, want %s (unmodelled %v)", got, want, r.conds)
			}
			if r.spec() != tt.line {
				t.Errorf("spec() = %q, want the line back", r.spec())
			}
		})
	}
}

func TestParseRule_readsConnlimitAndComment(t *testing.T) {
	args, _ := splitArgs(`-s 203.0.113.0/24 -p tcp -m tcp --dport 465 -m connlimit --connlimit-above 10 ` +
		`--connlimit-mask 32 --connlimit-saddr -m comment --comment "mailfw: office" -j REJECT --reject-with tcp-reset`)
	r := parseRule(Chain, args)
	if r.connlimit != 10 || r.limitMask != 32 || r.comment != "mailfw: office" || r.rejectWith != "tcp-reset" || !r.conditional() ||
		r.unmodelledMatches() {
		t.Errorf("got connlimit %d mask %d comment %q reject %q unmodelled %v",
			r.connlimit, r.limitMask, r.comment, r.rejectWith, r.conds)
	}
}

// renderObserved prints a scope one rule a line, for golden files.
func renderObserved(st *plan.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind=%s ipv6=%t\nextra=%s\n", st.Kind, st.IPv6, st.Extra)
	for _, sc := range st.Scopes {
		fmt.Fprintf(&b, "scope %s allow_order=%d deny_order=%d\n", sc.ID, sc.AllowOrder, sc.DenyOrder)
		for _, o := range sc.Rules {
			flags := ""
			for _, f := range []struct {
				on   bool
				name string
			}{{o.Owned, "owned"}, {o.Conditional, "conditional"}, {o.Fixed, "fixed"}, {o.Volatile, "volatile"}} {
				if f.on {
					flags += " " + f.name
				}
			}
			fmt.Fprintf(&b, "%7d %s%s desc=%q\n        id=%s\n", o.Order, o, flags, o.Description, o.ID)
		}
	}
	for _, f := range st.Findings {
		fmt.Fprintf(&b, "finding %s %s: %s\n", f.ID, f.Severity, f.Message)
	}
	return b.String()
}

func stateOf(t *testing.T, files ...string) *plan.State {
	t.Helper()
	var tables []*table
	for _, f := range files {
		fam := plan.IPv4
		if strings.Contains(f, "-v6") {
			fam = plan.IPv6
		}
		tables = append(tables, readTable(t, f, fam))
	}
	st := &plan.State{Kind: ModeNFT.Kind(), IPv6: true}
	describeState(st, tables, nil)
	return st
}

func TestRead_recordingsFlattenIntoObserved(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"empty", []string{"empty-nft-v4.txt"}},
		{"mixed", []string{"mixed-nft-v4.txt", "mixed-nft-v6.txt"}},
		{"f2b-legacy", []string{"f2b-legacy-v4.txt"}},
		{"docker", []string{"docker-nft-all.txt"}},
		{"states", []string{"states-nft-v4.txt", "states-nft-v6.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden.Check(t, tc.name+".observed", renderObserved(stateOf(t, tc.files...)))
		})
	}
}

func TestRead_f2bChainBecomesOneDenyPerPortBeforeMailfw(t *testing.T) {
	st := stateOf(t, "mixed-nft-v4.txt")
	sc := st.Scopes[0]
	var bans []int
	for _, o := range sc.Rules {
		if o.Source == "198.51.100.66/32" && o.Verdict == plan.Deny {
			if !o.Fixed || o.Owned || o.Conditional || o.Origin != "chain f2b-postfix" || o.Order != 10001 {
				t.Errorf("ban read as %+v", o)
			}
			bans = append(bans, o.PortFrom)
		}
	}
	if diff := cmp.Diff([]int{25, 465, 587}, bans); diff != "" {
		t.Errorf("banned ports (-want +got):\n%s", diff)
	}
	if sc.AllowOrder <= 10001 {
		t.Errorf("AllowOrder %d is not after the f2b chain", sc.AllowOrder)
	}
	for _, o := range sc.Rules {
		if o.Origin == "INPUT" && o.Verdict == plan.Deny && o.Source == "0.0.0.0/0" && !o.Conditional &&
			o.Order < sc.AllowOrder {
			t.Errorf("catch-all %s comes before mailfw's allows (order %d < %d)", o, o.Order, sc.AllowOrder)
		}
	}
}

func TestRead_ownedLimitPairIsOneRule(t *testing.T) {
	st := stateOf(t, "mixed-nft-v4.txt")
	var owned []string
	for _, o := range st.Scopes[0].Rules {
		if o.Owned {
			owned = append(owned, fmt.Sprintf("%s %q", o, o.Description))
		}
	}
	want := []string{
		`deny ipv4 tcp/25 from 192.0.2.99/32 (chain MAILFW-INPUT) "blocked $(x) ` + "`y`" + ` 'z' 中"`,
		`allow ipv4 tcp/25 from 0.0.0.0/0 (chain MAILFW-INPUT) ""`,
		`allow ipv4 tcp/465 from 203.0.113.0/24 limit 10/source (chain MAILFW-INPUT) "office"`,
	}
	if diff := cmp.Diff(want, owned); diff != "" {
		t.Errorf("owned rules (-want +got):\n%s", diff)
	}
}

func TestRead_deadJumpMakesOwnedRulesConditional(t *testing.T) {
	st := stateOf(t, "f2b-legacy-v4.txt")
	for _, o := range st.Scopes[0].Rules {
		if o.Owned && !o.Conditional {
			t.Errorf("%s is reported in force behind the catch-all", o)
		}
	}
	found := false
	for _, f := range st.Findings {
		found = found || f.ID == FindingChainNotReached
	}
	if !found {
		t.Errorf("no %s finding: %+v", FindingChainNotReached, st.Findings)
	}
}

func TestPickMode_prefersTheModeWithRules(t *testing.T) {
	errRead := fmt.Errorf("cannot read")
	tests := []struct {
		name string
		c    modeCounts
		def  Mode
		want Mode
	}{
		{"nft-only", modeCounts{nft: 3}, ModeLegacy, ModeNFT},
		{"legacy-only", modeCounts{legacy: 3}, ModeNFT, ModeLegacy},
		{"both-more-legacy", modeCounts{nft: 1, legacy: 5}, ModeNFT, ModeLegacy},
		{"both-more-nft", modeCounts{nft: 5, legacy: 1}, ModeLegacy, ModeNFT},
		{"none-default-nft", modeCounts{}, ModeNFT, ModeNFT},
		{"none-default-legacy", modeCounts{}, ModeLegacy, ModeLegacy},
		{"legacy-unreadable", modeCounts{nft: 2, legacyErr: errRead}, ModeLegacy, ModeNFT},
		{"nft-unreadable", modeCounts{nftErr: errRead}, ModeNFT, ModeLegacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, why := pickMode(tt.c, tt.def); got != tt.want {
				t.Errorf("pickMode = %s (%s), want %s", got, why, tt.want)
			}
		})
	}
}

func TestCountRules_countsEveryTable(t *testing.T) {
	data, err := os.ReadFile("testdata/docker-nft-all.txt")
	if err != nil {
		t.Fatal(err)
	}
	if n := countRules(data); n != 3 {
		t.Errorf("countRules = %d, want 3 (one filter, two nat)", n)
	}
}

func TestStoredDescription_keepsWhatTheKernelStores(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct{ in, want string }{
		{"office clients", "office clients"},
		{"  padded  ", "padded"},
		{"line\nbreak\ttab", "line break tab"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{`$(rm -rf /) "q" 's' \ 中`, `$(rm -rf /) "q" 's' \ 中`},
		{long, strings.Repeat("é", 123)},
	}
	for _, tt := range tests {
		got, err := StoredDescription(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("StoredDescription(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if len(markComment(got)) > maxComment {
			t.Errorf("comment for %q is %d bytes", tt.in, len(markComment(got)))
		}
	}
}

func TestChainContents_pairsEachLimitWithTheAllowAfterIt(t *testing.T) {
	const c = `-m comment --comment "mailfw: x"`
	listing := "*filter\n:INPUT ACCEPT [0:0]\n:" + Chain + " - [0:0]\n" +
		"-A INPUT -m comment --comment mailfw -j " + Chain + "\n" +
		"-A " + Chain + " -s 192.0.2.0/24 -p tcp -m tcp --dport 465 -m connlimit --connlimit-above 5 --connlimit-mask 32 --connlimit-saddr " + c + " -j REJECT --reject-with tcp-reset\n" +
		"-A " + Chain + " -s 192.0.2.0/24 -p tcp -m tcp --dport 465 -m connlimit --connlimit-above 9 --connlimit-mask 32 --connlimit-saddr " + c + " -j REJECT --reject-with tcp-reset\n" +
		"-A " + Chain + " -s 192.0.2.0/24 -p tcp -m tcp --dport 465 " + c + " -j ACCEPT\n" +
		"-A " + Chain + " -s 192.0.2.0/24 -p tcp -m tcp --dport 465 " + c + " -j ACCEPT\n" +
		"-A " + Chain + " -s 192.0.2.0/24 -p tcp -m tcp --dport 587 " + c + " -j ACCEPT\n" +
		// A limit after its allow limits nothing: not paired.
		"-A " + Chain + " -s 192.0.2.0/24 -p tcp -m tcp --dport 587 -m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr " + c + " -j REJECT --reject-with tcp-reset\n" +
		// A limit by subnet is not mailfw's per-address limit.
		"-A " + Chain + " -s 192.0.2.0/24 -p tcp -m tcp --dport 25 -m connlimit --connlimit-above 3 --connlimit-mask 24 --connlimit-saddr " + c + " -j REJECT --reject-with tcp-reset\n" +
		"COMMIT\n"
	tb, err := parseSave([]byte(listing), plan.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	_, entries := tb.chainContents()
	var got []string
	for _, e := range entries {
		if e.ok {
			got = append(got, e.rule.Key())
		} else {
			got = append(got, "not mailfw's form: "+e.native[0].spec())
		}
	}
	want := []string{
		"ipv4/tcp/465/192.0.2.0/24/allow/limit=5",
		"ipv4/tcp/465/192.0.2.0/24/allow/limit=9",
		"ipv4/tcp/587/192.0.2.0/24/allow",
		"not mailfw's form: -s 192.0.2.0/24 -p tcp -m tcp --dport 25 -m connlimit --connlimit-above 3 --connlimit-mask 24 --connlimit-saddr -m comment --comment \"mailfw: x\" -j REJECT --reject-with tcp-reset",
		"not mailfw's form: -s 192.0.2.0/24 -p tcp -m tcp --dport 587 -m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr -m comment --comment \"mailfw: x\" -j REJECT --reject-with tcp-reset",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestParseRule_statesAndFlagsOnNewConnections(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		cond  bool // a condition on new connections
		noNew bool // never sees a new connection
		any   bool // every source can match
	}{
		{"state-new", "-p tcp -m state --state NEW -m tcp --dport 25 -j ACCEPT", false, false, true},
		{"ctstate-new-established", "-p tcp -m conntrack --ctstate NEW,ESTABLISHED -m tcp --dport 25 -j ACCEPT",
			false, false, true},
		{"not-invalid", "-m conntrack ! --ctstate INVALID -j ACCEPT", false, false, true},
		{"established", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", true, true, true},
		{"state-established", "-m state --state ESTABLISHED -j ACCEPT", true, true, true},
		{"invalid", "-m conntrack --ctstate INVALID -j DROP", true, true, true},
		{"untracked", "-m conntrack --ctstate UNTRACKED -j ACCEPT", true, false, true},
		{"not-new", "-m conntrack ! --ctstate NEW -j ACCEPT", true, false, true},
		{"syn", "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j DROP", true, false, true},
		{"not-syn", "-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -m state --state NEW -j DROP", true, true, true},
		{"null-scan", "-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP", true, true, true},
		{"interface", "-i eth0 -j REJECT", true, false, true},
		{"destination", "-d 192.0.2.1/32 -j DROP", true, false, true},
		{"dst-type", "-m addrtype --dst-type LOCAL -j DROP", true, false, true},
		{"set-src", "-m set --match-set banned src -j DROP", true, false, false},
		{"set-dst", "-m set --match-set mine dst -j DROP", true, false, true},
		{"src-range", "-m iprange --src-range 192.0.2.1-192.0.2.9 -j DROP", true, false, false},
		{"recent", "-m recent --rcheck --name bad --rsource -j DROP", true, false, false},
		{"limit", "-m limit --limit 5/min -j DROP", true, false, false},
		{"source", "-s 192.0.2.0/24 -j DROP", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := splitArgs(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			r := parseRule("INPUT", args)
			if r.conditional() != tt.cond || r.noNew != tt.noNew || r.anySource() != tt.any {
				t.Errorf("conditional=%t noNew=%t anySource=%t, want %t %t %t (conditions %v)",
					r.conditional(), r.noNew, r.anySource(), tt.cond, tt.noNew, tt.any, r.conds)
			}
		})
	}
}

// TestRead_sourcesNeverWiden: a source plan cannot canonicalise is kept
// exactly (IPv4-mapped) or the rule is left out; it never reads as "any".
// A negated source is not narrowed to the prefix it excludes either.
func TestRead_sourcesNeverWiden(t *testing.T) {
	listing := "*filter\n:INPUT ACCEPT [0:0]\n" +
		"-A INPUT -s ::ffff:192.0.2.1/128 -p tcp -m tcp --dport 25 -j ACCEPT\n" +
		"-A INPUT -s ::ffff:192.0.2.0/120 -p tcp -m tcp --dport 587 -j ACCEPT\n" +
		"-A INPUT -s not-an-address -p tcp -m tcp --dport 465 -j ACCEPT\n" +
		"-A INPUT -p tcp -m set --match-set friends src -j ACCEPT\n" +
		"-A INPUT -p tcp -m iprange --src-range 2001:db8::1-2001:db8::9 -j ACCEPT\n" +
		"-A INPUT ! -s 2001:db8::/32 -p tcp -m tcp --dport 2525 -j ACCEPT\n" +
		"COMMIT\n"
	tb, err := parseSave([]byte(listing), plan.IPv6)
	if err != nil {
		t.Fatal(err)
	}
	st := &plan.State{IPv6: true}
	describeState(st, []*table{tb}, nil)
	var got []string
	for _, o := range st.Scopes[0].Rules {
		got = append(got, o.String())
	}
	want := []string{
		"allow ipv6 tcp/25 from ::ffff:192.0.2.1/128 (INPUT)",
		"allow ipv6 tcp/587 from ::ffff:192.0.2.0/120 (INPUT)",
		"allow ipv6 tcp/2525 from ::/0 (INPUT)", // every source but 2001:db8::/32
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}

// TestLayout_placesTheJump checks the placement rules on constructed
// listings: index of the first catch-all, the floor (just after the last
// ban before it), bans that close the port, and which jumps are mailfw's.
func TestLayout_placesTheJump(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		want  string
	}{
		{"conditional-catch-alls", "-A INPUT -s 192.0.2.9/32 -j DROP\n-A INPUT -i eth0 -p tcp -j REJECT\n",
			"floor=1 catchAll=1 blocked=[] jumps=[] bad=[]"},
		{"udp-only-is-not-mail", "-A INPUT -p udp -j DROP\n-A INPUT ! -p udp -j DROP\n",
			"floor=0 catchAll=1 blocked=[] jumps=[] bad=[]"},
		{"negated-port", "-A INPUT -p tcp -m tcp ! --dport 1:1000 -j DROP\n-A INPUT -p tcp -m tcp ! --dport 22 -j DROP\n",
			"floor=0 catchAll=1 blocked=[] jumps=[] bad=[]"},
		{"fail2ban-chain", ":f2b-x - [0:0]\n-A INPUT -p tcp -j f2b-x\n-A INPUT -j DROP\n-A f2b-x -s 192.0.2.1/32 -j DROP\n" +
			"-A f2b-x -j RETURN\n", "floor=1 catchAll=1 blocked=[] jumps=[] bad=[]"},
		{"ban-chain-closing", ":S - [0:0]\n-A INPUT -p tcp -j S\n-A INPUT -j DROP\n-A S -s 192.0.2.1/32 -j DROP\n" +
			"-A S -j REJECT\n", "floor=1 catchAll=1 blocked=[0] jumps=[] bad=[]"},
		{"closing-chain-without-bans", ":S - [0:0]\n-A INPUT -p tcp -j S\n-A S -s 10.0.0.0/8 -j ACCEPT\n-A S -j REJECT\n",
			"floor=0 catchAll=0 blocked=[] jumps=[] bad=[]"},
		{"not-mail", "-A INPUT ! -i lo -d 127.0.0.0/8 -j REJECT\n-A INPUT -m pkttype --pkt-type broadcast -j DROP\n" +
			"-A INPUT -m addrtype --dst-type MULTICAST -j DROP\n-A INPUT -d 192.0.2.1/32 -j DROP\n",
			"floor=0 catchAll=3 blocked=[] jumps=[] bad=[]"},
		{"jumps", ":" + Chain + " - [0:0]\n-A INPUT -j " + Chain + "\n-A INPUT -m comment --comment mailfw -j " + Chain + "\n" +
			"-A INPUT -p tcp -m comment --comment mailfw -j " + Chain + "\n-A INPUT -m comment --comment mailfw -g " + Chain + "\n",
			"floor=0 catchAll=-1 blocked=[] jumps=[0 1] bad=[2 3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := parseSave([]byte("*filter\n:INPUT ACCEPT [0:0]\n"+tt.rules+"COMMIT\n"), plan.IPv4)
			if err != nil {
				t.Fatal(err)
			}
			l := tb.layout(plan.MailPorts)
			got := fmt.Sprintf("floor=%d catchAll=%d blocked=%v jumps=%v bad=%v", l.floor, l.catchAll, l.blocked,
				l.jumps, l.badJumps)
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestDiff_ordinaryRHELHostNeedsNothingAndWarnsOfNothing: an INPUT in the
// RHEL style (state NEW allows, RELATED,ESTABLISHED first) already grants
// the policy, and the established-traffic rule is no broad rule.
func TestDiff_ordinaryRHELHostNeedsNothingAndWarnsOfNothing(t *testing.T) {
	listing := "*filter\n:INPUT ACCEPT [0:0]\n" +
		"-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n" +
		"-A INPUT -p icmp -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n" +
		"-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT\n" +
		"-A INPUT -p tcp -m state --state NEW -m tcp --dport 25 -j ACCEPT\n" +
		"-A INPUT -p tcp -m conntrack --ctstate NEW,UNTRACKED -m tcp --dport 587 -j ACCEPT\n" +
		"-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n"
	tb, err := parseSave([]byte(listing), plan.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	st := &plan.State{Kind: ModeNFT.Kind()}
	describeState(st, []*table{tb}, nil)
	p, err := plan.ParsePolicy("test.yaml", []byte(`version: 1
allow:
  - port: smtp
    from: [anywhere-ipv4]
  - port: submission
    from: [anywhere-ipv4]
targets:
  - name: host
    type: iptables
`))
	if err != nil {
		t.Fatal(err)
	}
	caps := plan.Capabilities{Deny: true, Limit: true, Description: StoredDescription}
	desired, err := p.Desired(p.Targets[0], caps)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := plan.Diff(desired, st, caps, plan.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Changes) != 0 || len(tp.Satisfied) != 2 {
		t.Errorf("%d changes and %d satisfied, want none and 2:\n%v", len(tp.Changes), len(tp.Satisfied),
			tp.Changes)
	}
	for _, f := range tp.Findings {
		if f.Severity == plan.High || f.ID == plan.FindingBroadRule {
			t.Errorf("finding %s %s: %s", f.ID, f.Severity, f.Message)
		}
	}
}
