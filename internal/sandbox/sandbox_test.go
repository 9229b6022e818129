package sandbox

import (
	"testing"
	"time"
)

func TestLink_connectsBothFamilies(t *testing.T) {
	Require(t, "sysctl")
	host, client := NewNetns(t), NewNetns(t)
	host.Link(client, []string{"192.0.2.1/24", "2001:db8::1/64"},
		[]string{"192.0.2.2/24", "192.0.2.3/24", "2001:db8::2/64"})
	host.Listen("[::]:25")
	for _, c := range []struct{ from, to string }{
		{"192.0.2.2", "192.0.2.1:25"},
		{"192.0.2.3", "192.0.2.1:25"},
		{"2001:db8::2", "[2001:db8::1]:25"},
	} {
		if err := client.Connect(c.from, c.to, 2*time.Second); err != nil {
			t.Errorf("connect from %s to %s: %v", c.from, c.to, err)
		}
	}
	if err := client.Connect("192.0.2.2", "192.0.2.1:587", time.Second); err == nil {
		t.Error("connect to a port nobody listens on succeeded")
	}
}
