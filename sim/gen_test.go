package sim

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/score"
)

// testConfig is DefaultConfig made small enough for tests.
func testConfig(t testing.TB) Config {
	t.Helper()
	c := DefaultConfig()
	c.Duration = 2 * time.Second
	c.Warmup = time.Second
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestGenerator(t testing.TB, c *Config) *generator {
	t.Helper()
	g, err := newGenerator(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// meaningful returns the bytes of a packet record that carry information:
// data in use, size, address and port.
func meaningful(p *channels.Packet) []byte {
	var out []byte
	out = append(out, p.Data()...)
	out = append(out, p[channels.PacketDataSize:channels.PacketSize]...)
	return out
}

// TestDeterminism: the same seed gives the same bytes in the same order;
// another seed gives other bytes; the oracle's skip pass sees the same
// events as the encoding pass.
func TestDeterminism(t *testing.T) {
	c := testConfig(t)
	const n = 20000
	digest := func(seed int64) (uint64, []event) {
		c.Seed = seed
		g := newTestGenerator(t, &c)
		var p channels.Packet
		d := xxhash.New()
		evs := make([]event, 0, n)
		for i := 0; i < n; i++ {
			evs = append(evs, g.next(&p))
			_, _ = d.Write(meaningful(&p))
		}
		return d.Sum64(), evs
	}
	a, evA := digest(1)
	b, evB := digest(1)
	x, _ := digest(2)
	if a != b {
		t.Fatal("same seed, different traffic bytes")
	}
	if a == x {
		t.Fatal("different seeds, same traffic bytes")
	}
	for i := range evA {
		if evA[i] != evB[i] {
			t.Fatalf("event %d differs: %+v vs %+v", i, evA[i], evB[i])
		}
	}
	c.Seed = 1
	g := newTestGenerator(t, &c)
	for i := range evA {
		if ev := g.skip(); ev != evA[i] {
			t.Fatalf("skip event %d = %+v, encoded pass %+v", i, ev, evA[i])
		}
		if i > 0 && evA[i].t < evA[i-1].t {
			t.Fatalf("event %d goes back in time", i)
		}
	}
}

// TestGeneratedKinds checks every kind of packet the default agents make
// against the sidecar's parser and the mock sigverify, the duplicates
// against earlier packets, and the rates and mix against the config.
func TestGeneratedKinds(t *testing.T) {
	c := testConfig(t)
	g := newTestGenerator(t, &c)
	owners := g.owners()
	ev := score.NewEvaluator(99)
	var sg signer
	var p channels.Packet
	seen := make(map[uint64]bool)
	perAgent := make([]int, len(c.Agents))
	perKind := make(map[kind]int)
	var last event
	const dur = int64(time.Second)
	for {
		if g.peek() >= dur {
			break
		}
		e := g.next(&p)
		last = e
		perAgent[e.agent]++
		h := score.PacketHash(99, &p)
		if e.dup {
			perKind[kindDuplicate]++
			if !seen[h] {
				t.Fatalf("duplicate %+v does not repeat an earlier packet", e)
			}
			continue
		}
		perKind[e.kind]++
		if seen[h] {
			t.Fatalf("original %+v repeats an earlier packet", e)
		}
		seen[h] = true
		if a, ok := owners[keyOfPacket(&p)]; !ok || a != e.agent {
			t.Fatalf("packet of agent %d attributed to %d (%v)", e.agent, a, ok)
		}
		info, rej := ev.Evaluate(&p)
		switch e.kind {
		case kindValid, kindBadSignature:
			if rej != score.OK {
				t.Fatalf("%+v: score rejects: %v", e, rej)
			}
			if info.Budget.Fee != e.fee || info.Budget.CUs != uint64(e.cus) {
				t.Fatalf("%+v: score budget %+v", e, info.Budget)
			}
			if got := sg.verify(p.Data()); got != (e.kind == kindValid) {
				t.Fatalf("%+v: verify = %v", e, got)
			}
		case kindUnparsable:
			if !rej.Parse() {
				t.Fatalf("%+v: score says %v, want a parse failure", e, rej)
			}
			if sg.verify(p.Data()) && p.Data()[0] != 0 {
				// Truncated or trailing-byte variants keep a valid
				// signature over their original message only if the
				// message is intact, which it is not.
				t.Fatalf("%+v: unparsable packet verifies", e)
			}
		}
	}
	if last.t >= dur {
		t.Fatalf("event past the horizon: %+v", last)
	}
	for i, a := range c.Agents {
		want := a.PPS
		got := float64(perAgent[i])
		if math.Abs(got-want) > 5*math.Sqrt(want)+2 {
			t.Errorf("agent %s: %v packets in 1 s, want about %v", a.Name, got, want)
		}
	}
	// Spammer mix: 25 % duplicates, 15 % unparsable.
	sp := float64(perAgent[3])
	if d := float64(perKind[kindDuplicate]) / sp; math.Abs(d-0.25) > 0.02 {
		t.Errorf("duplicate share of spammer %v, want 0.25", d)
	}
	if u := float64(perKind[kindUnparsable]) / sp; math.Abs(u-0.15) > 0.02 {
		t.Errorf("unparsable share of spammer %v, want 0.15", u)
	}
}

// TestIPv6Agent checks the IPv6 agent's range steps by /64 and reaches
// the packet record as an IPv6 address.
func TestIPv6Agent(t *testing.T) {
	c := testConfig(t)
	ips, err := c.Agents[1].addrs()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2001:db8:100::1", "2001:db8:100:1::1", "2001:db8:100:2::1", "2001:db8:100:3::1"}
	for i, w := range want {
		if ips[i].String() != w {
			t.Errorf("ip %d = %v, want %s", i, ips[i], w)
		}
	}
	g := newTestGenerator(t, &c)
	var p channels.Packet
	for i := 0; i < 5000; i++ {
		if e := g.next(&p); e.agent == 1 {
			if p.AddrTag() != channels.AddrTagIPv6 || len(p.AddrBytes()) != 16 {
				t.Fatalf("IPv6 agent packet has tag %d", p.AddrTag())
			}
			return
		}
	}
	t.Fatal("no packet from the IPv6 agent")
}

func TestGenerateAllocs(t *testing.T) {
	c := testConfig(t)
	g := newTestGenerator(t, &c)
	var p channels.Packet
	if n := testing.AllocsPerRun(10000, func() { g.next(&p) }); n != 0 {
		t.Errorf("generator.next: %v allocs per packet", n)
	}
	if n := testing.AllocsPerRun(10000, func() { g.skip() }); n != 0 {
		t.Errorf("generator.skip: %v allocs per packet", n)
	}
}

func TestDuplicateBytes(t *testing.T) {
	c := testConfig(t)
	g := newTestGenerator(t, &c)
	var p channels.Packet
	prev := make(map[uint64][]byte)
	dups := 0
	for i := 0; i < 20000 && dups < 100; i++ {
		e := g.next(&p)
		key := e.seq
		if e.dup {
			if !bytes.Equal(prev[key], meaningful(&p)) {
				t.Fatalf("duplicate of seq %d differs from its original", key)
			}
			dups++
			continue
		}
		prev[key] = meaningful(&p)
	}
	if dups == 0 {
		t.Fatal("no duplicates generated")
	}
}

// TestTrafficMatchesGenerator: Traffic yields the generator's packets, in
// order, with their channels.
func TestTrafficMatchesGenerator(t *testing.T) {
	c := DefaultConfig()
	tr, err := NewTraffic(c)
	if err != nil {
		t.Fatal(err)
	}
	g := newTestGenerator(t, &c)
	var a, b channels.Packet
	for i := range 2000 {
		ch := tr.Next(&a)
		ev := g.next(&b)
		if ch != int(ev.channel) || !bytes.Equal(meaningful(&a), meaningful(&b)) {
			t.Fatalf("packet %d differs (channel %d, want %d)", i, ch, ev.channel)
		}
	}
	bad := c
	bad.Agents = nil
	if _, err := NewTraffic(bad); err == nil {
		t.Fatal("NewTraffic accepted a configuration without agents")
	}
}

// TestAgentFeatures: phases (start/stop), NAT (shared addresses),
// impersonation (another agent's fee payer, bad signature), unpaid
// transactions (verify, flagged) and a fresh fee payer per transaction.
func TestAgentFeatures(t *testing.T) {
	c := DefaultConfig()
	valid := []MixConfig{{Kind: KindValid, Weight: 1, PriceMedian: 1000, CUMin: 1000, CUMax: 2000}}
	c.Agents = []AgentConfig{
		{Name: "victim", Channel: "tpu", PPS: 1000, IPs: []string{"10.0.0.1"}, Signers: 2, Mix: valid, SharedIPs: true},
		{Name: "late", Channel: "tpu", PPS: 1000, IPs: []string{"10.0.0.1"}, Signers: 2, Mix: valid, SharedIPs: true,
			Start: Offset(time.Second), Stop: Offset(2 * time.Second)},
		{Name: "imp", Channel: "tpu", PPS: 1000, IPs: []string{"10.0.0.2"}, Signers: 1,
			Mix: []MixConfig{{Kind: KindImpersonate, Weight: 1, Victim: "victim", PriceMedian: 1000, CUMin: 1000, CUMax: 1000}}},
		{Name: "unpaid", Channel: "tpu", PPS: 1000, IPs: []string{"10.0.0.3"}, Signers: 1, FreshSigners: true,
			Mix: []MixConfig{{Kind: KindUnpaid, Weight: 1, PriceMedian: 1000, CUMin: 1000, CUMax: 1000}}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	g := newTestGenerator(t, &c)
	var p channels.Packet
	var d decoded
	var sg signer
	victimPayers := map[[32]byte]bool{}
	freshPayers := map[[32]byte]bool{}
	var lateFirst, lateLast int64 = -1, 0
	for range 20_000 {
		ev := g.next(&p)
		data := p.Data()
		if !decodeTx(data, &d) || !d.hasMemo || int32(d.agent) != ev.agent {
			t.Fatalf("packet of agent %d does not decode to it", ev.agent)
		}
		payer := [32]byte(data[d.msg+4 : d.msg+36])
		ok := sg.verify(data)
		switch ev.agent {
		case 0:
			victimPayers[payer] = true
		case 1:
			if lateFirst < 0 {
				lateFirst = ev.t
			}
			lateLast = ev.t
		case 2:
			if ok || ev.unique() {
				t.Fatal("an impersonation verified or counts as offered")
			}
			if !victimPayers[payer] && len(victimPayers) == 2 {
				t.Fatalf("impersonation names payer %x, not the victim's", payer[:4])
			}
		case 3:
			if !ok || !d.unpaid || ev.unique() {
				t.Fatalf("unpaid: verified %v, flagged %v, offered %v", ok, d.unpaid, ev.unique())
			}
			if freshPayers[payer] {
				t.Fatal("a fresh fee payer was used twice")
			}
			freshPayers[payer] = true
		}
		if ev.agent != 2 && !ok {
			t.Fatalf("agent %d: valid packet fails verification", ev.agent)
		}
	}
	if lateFirst < int64(time.Second) || lateLast >= int64(2*time.Second) || lateFirst < 0 {
		t.Errorf("late agent sent from %v to %v, want within [1s, 2s)", time.Duration(lateFirst), time.Duration(lateLast))
	}
	if len(freshPayers) < 4000 {
		t.Errorf("%d fresh payers", len(freshPayers))
	}

	// Sharing needs shared_ips on both; a victim must exist.
	c.Agents[0].SharedIPs = false
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "shared_ips") {
		t.Errorf("unshared address accepted: %v", err)
	}
	c.Agents[0].SharedIPs = true
	c.Agents[2].Mix[0].Victim = "nobody"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "victim") {
		t.Errorf("unknown victim accepted: %v", err)
	}
}
