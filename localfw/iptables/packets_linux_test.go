package iptables

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailfw/mailfw/internal/sandbox"
	"github.com/mailfw/mailfw/plan"
)

// TestApply_realPackets sends real TCP handshakes from a second namespace
// over a veth pair: the allowed source gets through on 25, the policy's
// denied source and fail2ban's banned source do not, and nothing reaches
// 587, which the policy does not open and INPUT's catch-all REJECT closes.
func TestApply_realPackets(t *testing.T) {
	sandbox.Require(t, "sysctl")
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			h := newHost(t, m, false)
			client := sandbox.NewNetns(t)
			h.ns.Link(client, []string{"192.0.2.1/24", "2001:db8::1/64"}, []string{
				"192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24",
				"2001:db8::2/64", "2001:db8::3/64", "2001:db8::4/64"})
			h.restore(plan.IPv4, bannedHost(plan.IPv4))
			h.restore(plan.IPv6, bannedHost(plan.IPv6))
			h.ns.Listen("[::]:25")
			h.ns.Listen("[::]:587")

			for _, c := range []struct{ from, to string }{
				{"192.0.2.2", "192.0.2.1:25"}, {"2001:db8::2", "[2001:db8::1]:25"},
			} {
				if err := client.Connect(c.from, c.to, 3*time.Second); err == nil {
					t.Errorf("before apply, %s reached %s through the catch-all", c.from, c.to)
				}
			}

			p := policy(t, `version: 1
sources:
  clients: [192.0.2.0/24, "2001:db8::/64"]
  spammers: [192.0.2.3, "2001:db8::3"]
allow:
  - port: smtp
    from: [clients]
deny:
  - port: smtp
    from: [spammers]
targets:
  - name: host
    type: iptables
`)
			h.apply(p)

			for _, c := range []struct {
				from, to string
				open     bool
				why      string
			}{
				{"192.0.2.2", "192.0.2.1:25", true, "allowed"},
				{"192.0.2.3", "192.0.2.1:25", false, "denied by the policy"},
				{"192.0.2.4", "192.0.2.1:25", false, "banned by fail2ban"},
				{"192.0.2.2", "192.0.2.1:587", false, "not opened by the policy"},
				{"2001:db8::2", "[2001:db8::1]:25", true, "allowed"},
				{"2001:db8::3", "[2001:db8::1]:25", false, "denied by the policy"},
				{"2001:db8::4", "[2001:db8::1]:25", false, "banned by fail2ban"},
				{"2001:db8::2", "[2001:db8::1]:587", false, "not opened by the policy"},
			} {
				err := client.Connect(c.from, c.to, 3*time.Second)
				if c.open && err != nil {
					t.Errorf("%s to %s (%s): %v", c.from, c.to, c.why, err)
				}
				if !c.open && err == nil {
					t.Errorf("%s reached %s although %s", c.from, c.to, c.why)
				}
				if !c.open && err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Errorf("%s to %s timed out; every refusal here is a REJECT", c.from, c.to)
					}
				}
			}
		})
	}
}

// bannedHost is INPUT with fail2ban banning the client's .4/::4 on the mail
// ports, ICMP (IPv6 needs it for neighbour discovery) and a final REJECT.
func bannedHost(f plan.Family) string {
	if f == plan.IPv6 {
		return `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:f2b-postfix - [0:0]
-A INPUT -p tcp -m multiport --dports 25,465,587 -j f2b-postfix
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -j REJECT --reject-with icmp6-adm-prohibited
-A f2b-postfix -s 2001:db8::4/128 -j REJECT --reject-with icmp6-port-unreachable
-A f2b-postfix -j RETURN
COMMIT
`
	}
	return `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:f2b-postfix - [0:0]
-A INPUT -p tcp -m multiport --dports 25,465,587 -j f2b-postfix
-A INPUT -p icmp -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A f2b-postfix -s 192.0.2.4/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-postfix -j RETURN
COMMIT
`
}

// TestApply_connectionLimitHolds opens connections from one source and
// holds them: with connections_per_source 2 the third is refused, while
// another source still gets in.
func TestApply_connectionLimitHolds(t *testing.T) {
	sandbox.Require(t, "sysctl")
	h := newHost(t, ModeNFT, true)
	client := sandbox.NewNetns(t)
	h.ns.Link(client, []string{"192.0.2.1/24"}, []string{"192.0.2.2/24", "192.0.2.3/24"})
	h.restore(plan.IPv4, bannedHost(plan.IPv4))
	var l net.Listener
	if err := h.ns.Do(func() (err error) { l, err = net.Listen("tcp", "192.0.2.1:465"); return err }); err != nil {
		t.Fatal(err)
	}
	held, exited := make(chan net.Conn, 16), make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-exited
		close(held)
		for c := range held {
			c.Close()
		}
	})
	go func() {
		defer close(exited)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	h.apply(policy(t, `version: 1
allow:
  - port: smtps
    from: [192.0.2.0/24]
    limit: {connections_per_source: 2}
targets:
  - name: host
    type: iptables
`))
	dial := func(from string) (net.Conn, error) {
		var c net.Conn
		err := client.Do(func() (err error) {
			d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err = d.Dial("tcp", "192.0.2.1:465")
			return err
		})
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	for i := range 2 {
		if _, err := dial("192.0.2.2"); err != nil {
			t.Fatalf("connection %d within the limit: %v", i+1, err)
		}
	}
	if _, err := dial("192.0.2.2"); err == nil {
		t.Error("a third connection from one source got through a limit of 2")
	}
	if _, err := dial("192.0.2.3"); err != nil {
		t.Errorf("another source was refused: %v", err)
	}
}

// TestApply_realPacketsPastOthersRules sends real handshakes through
// INPUT set-ups others commonly write: mailfw's allow must take effect past
// a catch-all that has conditions of its own or a jump with extra matches,
// and must not bypass a ban in a chain that also rejects everyone else.
func TestApply_realPacketsPastOthersRules(t *testing.T) {
	sandbox.Require(t, "sysctl")
	type conn struct {
		from string
		open bool
	}
	tests := []struct {
		name     string
		rules    string // {dev} is the host's side of the veth pair
		findings []string
		conns    []conn
	}{
		{"interface-reject", "-A INPUT -i {dev} -j REJECT\n", nil,
			[]conn{{"192.0.2.4", true}}},
		{"state-new-reject", "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n" +
			"-A INPUT -m conntrack --ctstate NEW -j REJECT\n", nil, []conn{{"192.0.2.4", true}}},
		{"jump-with-a-source", ":" + Chain + " - [0:0]\n" +
			"-A INPUT -s 192.0.2.9/32 -m comment --comment mailfw -j " + Chain + "\n" +
			"-A INPUT -j REJECT\n" +
			"-A " + Chain + " -p tcp -m tcp --dport 25 -m comment --comment mailfw -j ACCEPT\n",
			[]string{FindingChainNotReached}, []conn{{"192.0.2.4", true}}},
		{"ban-chain-that-rejects-the-rest", ":SMTP-IN - [0:0]\n" +
			"-A INPUT -p tcp -m multiport --dports 25,465,587 -j SMTP-IN\n-A INPUT -j REJECT\n" +
			"-A SMTP-IN -s 192.0.2.3/32 -j REJECT\n-A SMTP-IN -s 192.0.2.2/32 -j ACCEPT\n" +
			"-A SMTP-IN -j REJECT\n",
			[]string{FindingBanChainCloses, plan.FindingDeadAllow},
			[]conn{{"192.0.2.2", true}, {"192.0.2.3", false}, {"192.0.2.4", false}}},
	}
	p := policy(t, `version: 1
allow:
  - port: smtp
    from: [anywhere-ipv4]
targets:
  - name: host
    type: iptables
`)
	for _, tt := range tests {
		for _, m := range modes {
			t.Run(tt.name+"/"+string(m), func(t *testing.T) {
				h := newHost(t, m, true)
				client := sandbox.NewNetns(t)
				h.ns.Link(client, []string{"192.0.2.1/24"}, []string{"192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24"})
				dev := "v" + h.ns.Name[5:]
				h.restore(plan.IPv4, "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"+
					strings.ReplaceAll(tt.rules, "{dev}", dev)+"COMMIT\n")
				h.ns.Listen("0.0.0.0:25")
				// .4 is neither banned nor accepted by anyone's rules.
				if err := client.Connect("192.0.2.4", "192.0.2.1:25", 3*time.Second); err == nil {
					t.Fatal("before apply, port 25 was open already")
				}
				tp := h.plan(p)
				if len(tp.Changes) == 0 {
					t.Error("the plan has no changes although port 25 is closed")
				}
				for _, id := range tt.findings {
					if !slices.ContainsFunc(tp.Findings, func(f plan.Finding) bool { return f.ID == id }) {
						t.Errorf("no %s finding in %+v", id, tp.Findings)
					}
				}
				h.apply(p)
				for _, c := range tt.conns {
					err := client.Connect(c.from, "192.0.2.1:25", 3*time.Second)
					if c.open && err != nil {
						t.Errorf("%s cannot reach port 25: %v", c.from, err)
					}
					if !c.open && err == nil {
						t.Errorf("%s reached port 25", c.from)
					}
				}
				h.converged(p)
			})
		}
	}
}
