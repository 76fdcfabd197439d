package sigverifyfb

import (
	"net/netip"
	"testing"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
)

func TestSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  func(*channels.Packet)
		want model.IP
		ok   bool
	}{
		{"ipv4", func(p *channels.Packet) { p.SetAddr(netip.MustParseAddr("192.0.2.9")) },
			model.IPOf(netip.MustParseAddr("192.0.2.9")), true},
		{"ipv6 keyed by /64", func(p *channels.Packet) { p.SetAddr(netip.MustParseAddr("2001:db8:1:2::99")) },
			model.IPOf(netip.MustParseAddr("2001:db8:1:2::1")), true},
		{"discard flag not required", func(p *channels.Packet) {
			p.SetAddr(netip.MustParseAddr("192.0.2.10"))
			p.SetFlags(0)
		}, model.IPOf(netip.MustParseAddr("192.0.2.10")), true},
		{"invalid address tag", func(p *channels.Packet) { p[1240] = 2 }, model.IP{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p channels.Packet
			p.SetFlags(channels.FlagDiscard)
			tc.rec(&p)
			got, ok := Source(&p)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("Source = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSourceAllocatesNothing(t *testing.T) {
	var p channels.Packet
	p.SetAddr(netip.MustParseAddr("2001:db8::1"))
	if n := testing.AllocsPerRun(100, func() { _, _ = Source(&p) }); n != 0 {
		t.Fatalf("Source allocates %v times", n)
	}
}
