package model

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestEmptyModel(t *testing.T) {
	m := New(DefaultParams())
	if f := m.Forward(ip4(1, 2, 3, 4), signer(1)); f != 1 {
		t.Fatalf("empty model forward = %v, want 1 (the unknown prior)", f)
	}
	if m.MaxSignerFactor() != 1 || m.MinIPFactor() != DefaultParams().MinScore {
		t.Fatalf("max signer %v, min IP %v", m.MaxSignerFactor(), m.MinIPFactor())
	}
}

// TestUnpaidEarnsNothing: a verified transaction that is never included
// (never paid) earns 0: Value is 0, and a sender whose transactions all
// end so sinks to the floor, however much they claim, while a sender
// whose transactions are paid keeps 1.
func TestUnpaidEarnsNothing(t *testing.T) {
	p := DefaultParams()
	if v := Value(p, tx(ip4(1, 1, 1, 1), signer(1), 5000, false)); v != 0 {
		t.Fatalf("value of an unpaid transaction = %v, want 0", v)
	}
	if v := Value(p, tx(ip4(1, 1, 1, 1), signer(1), 5000, true)); v != 5000 {
		t.Fatalf("value of a paid transaction = %v, want its fee per CU 5000", v)
	}
	m := New(p)
	unpaid, paid := ip4(203, 0, 113, 1), ip4(10, 0, 0, 1)
	for i := range p.Window {
		m.Observe(tx(unpaid, signer(uint32(1000+i)), 900_000, false)) // a fresh payer each time
		m.Observe(tx(paid, signer(1), 1_000, true))
	}
	if f := m.IPFactor(unpaid); f != p.UnpaidFloor {
		t.Fatalf("IP whose verified transactions were never paid: factor %v, want the unpaid floor", f)
	}
	if f := m.IPFactor(paid); f != 1 {
		t.Fatalf("IP whose transactions were all paid: factor %v, want 1", f)
	}
	// Its neighbours inherit the record: a fresh IP of the same /24.
	if f := m.IPFactor(ip4(203, 0, 113, 2)); f != p.UnpaidFloor {
		t.Fatalf("fresh IP next to it: factor %v, want the unpaid floor", f)
	}
	if m.Forward(unpaid, signer(1))*900_000 >= m.Forward(paid, signer(1))*1_000 {
		t.Fatal("the unpaid sender still outranks the paying one")
	}
}

// TestFailureRate: 1 % of bad signatures at a sender's usual claims cost
// about 1 % of its factor, not everything.
func TestFailureRate(t *testing.T) {
	// Claims equal in value: paid transactions and failures both claim
	// fee/CU 2.
	for _, rate := range []int{1, 5, 20} {
		m := New(DefaultParams())
		ip := ip4(10, 1, 0, 1)
		for i := range 20_000 {
			if (i*rate)%100 < rate { // spread evenly
				m.Penalize(ip, 2)
			} else {
				m.Observe(tx(ip, signer(uint32(i%8)), 2, true))
			}
		}
		want := 1 - float64(rate)/100
		if rate > 10 { // beyond FailTolerance: scaled toward 0 at one half
			want *= (0.5 - float64(rate)/100) / 0.4
		}
		approx(t, fmt.Sprintf("factor at %d %% failures", rate), m.IPFactor(ip), want, 0.04*want+0.01)
	}
	// An unparsable packet (claim unknown) weighs the IP's usual claim.
	m := New(DefaultParams())
	ip := ip4(10, 1, 0, 2)
	for i := range 20_000 {
		if i%100 == 0 {
			m.Penalize(ip, 0)
		} else {
			m.Observe(tx(ip, signer(1), 7, true))
		}
	}
	approx(t, "factor at 1 % unparsable", m.IPFactor(ip), 0.99, 0.03)
}

// TestFailuresSinkFarmedIP: a sender that was paid for a long time and
// turns to bad signatures claiming 100 times more sinks below its own
// past traffic within about 140 failures (value-weighted: 3 % of one
// second of a 5 000/s sigverify), and keeps sinking (its paid past fades
// by 1-1/Window per failure).
func TestFailuresSinkFarmedIP(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	ip := ip4(198, 51, 100, 20)
	for i := range 5000 {
		m.Observe(tx(ip, signer(uint32(i%8)), 200_000, true))
	}
	n := 0
	for m.IPFactor(ip)*20_000_000 >= 200_000 {
		m.Penalize(ip, 20_000_000)
		n++
	}
	if n > 150 {
		t.Fatalf("%d failures claiming 100x before the farmed IP ranks below its own past traffic", n)
	}
	for range 5 * p.Window {
		m.Penalize(ip, 20_000_000)
	}
	if f := m.IPFactor(ip); f > 1e-4 {
		t.Fatalf("after a window of failures: factor %v", f)
	}
}

// TestFloodBoundedMemory: a flood of 1 M penalised fresh IPs costs
// bounded memory (tables stay at their maximum; the least recently
// updated entries go), every fresh IP of the flooded neighbourhoods
// inherits their record, an honest sender elsewhere keeps its factor,
// and no call stalls (each is O(1)).
func TestFloodBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1 M penalties")
	}
	p := DefaultParams()
	m := New(p)
	honest := ip4(10, 1, 0, 1)
	var maxCall time.Duration
	for i := range 1_000_000 {
		if i%50 == 0 {
			m.Observe(tx(honest, signer(1), 1_000_000, true))
		}
		ip := ip4(100, 64+byte(i>>16), byte(i>>8), byte(i))
		t0 := time.Now()
		m.Penalize(ip, 1_500_000)
		if d := time.Since(t0); d > maxCall {
			maxCall = d
		}
	}
	st := m.Stats()
	if st.IPs > p.MaxIPs || st.NearPrefixes > p.MaxPrefixes || st.WidePrefixes > p.MaxPrefixes {
		t.Fatalf("tables grew past their bounds: %+v", st)
	}
	if st.EvictedIPs < 1_000_000-uint64(p.MaxIPs) {
		t.Fatalf("evicted %d IPs", st.EvictedIPs)
	}
	for _, ip := range []IP{ip4(100, 64, 0, 1), ip4(100, 70, 9, 9), ip4(100, 79, 200, 7)} {
		if f := m.IPFactor(ip); f != p.MinScore {
			t.Errorf("IP %v of the flood (evicted or not): factor %v, want MinScore", ip, f)
		}
	}
	if f := m.IPFactor(honest); f != 1 {
		t.Errorf("honest IP after the flood: factor %v, want 1", f)
	}
	if f := m.IPFactor(ip4(10, 1, 0, 2)); f < 0.9 {
		t.Errorf("honest neighbour after the flood: factor %v", f)
	}
	t.Logf("1 M penalised IPs: %d IP, %d /24, %d /16 records; longest Penalize %v", st.IPs, st.NearPrefixes, st.WidePrefixes, maxCall)
}

// TestCrowdLearned: a crowd of new senders, each IP and fee payer seen
// once or twice, is learned across its outcomes: its neighbourhood's
// record rises as its transactions are paid, so its next fresh IPs score
// like a paying sender even after an established model.
func TestCrowdLearned(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	for i := range 20_000 { // an established model: paying and non-paying senders
		m.Observe(tx(ip4(10, byte(i%8), 0, 1), signer(uint32(i%8)), 1000, i%8 < 4))
	}
	crowd := func(i int) IP { return ip4(172, 16, byte(i>>8), byte(i)) }
	before := m.IPFactor(crowd(5000))
	for i := range 3000 {
		m.Observe(tx(crowd(i), signer(uint32(100_000+i)), 3000, true))
	}
	after := m.IPFactor(crowd(5000)) // an IP of the crowd never seen
	if !(after > 0.99) {
		t.Fatalf("fresh crowd IP after 3000 paid crowd transactions: factor %v (before %v), want > 0.99", after, before)
	}
	if m.Forward(crowd(5001), signer(999_999))*3000 <= m.Forward(ip4(10, 0, 0, 1), signer(0))*1000 {
		t.Fatal("the crowd, paying 3x, does not outrank the established top sender")
	}
}

// TestUnknownPrior: an unknown sender's factor follows what newcomers did
// lately: after a wave of failing newcomers an IP from an unseen
// neighbourhood starts low; after newcomers pay again it recovers.
func TestUnknownPrior(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	fresh := ip4(250, 250, 2, 1) // a neighbourhood neither wave touches
	if f := m.IPFactor(fresh); f != 1 {
		t.Fatalf("unknown IP in an empty model: %v", f)
	}
	for i := range 2000 {
		m.Penalize(IPv4([4]byte{byte(i), byte(i >> 8), 7, 7}), 1000) // every one a newcomer
	}
	low := m.IPFactor(fresh)
	if low > 0.01 {
		t.Fatalf("unknown IP after a wave of failing newcomers: %v", low)
	}
	for i := range 2000 {
		m.Observe(tx(IPv4([4]byte{byte(i), byte(i >> 8), 9, 9}), signer(uint32(i)), 1000, true))
	}
	if f := m.IPFactor(fresh); f < 0.9 {
		t.Fatalf("unknown IP after paying newcomers: %v (was %v)", f, low)
	}
	if st := m.Stats(); math.Abs(st.UnknownIP-m.IPFactor(fresh)) > 1e-12 {
		t.Fatalf("Stats.UnknownIP %v, factor %v", st.UnknownIP, m.IPFactor(fresh))
	}
}

// TestSignerFactor: a fee payer that is never paid from IPs that usually
// are sinks; one paid as its IPs predict keeps 1; naming a good payer
// (impersonation) lifts nothing, since a signer only lowers a score.
func TestSignerFactor(t *testing.T) {
	m := New(DefaultParams())
	good, broke := signer(1), signer(2)
	for i := range 2000 {
		ip := ip4(10, 0, byte(i%4), 1)
		m.Observe(tx(ip, good, 100, true))
		if i%10 == 0 {
			m.Observe(tx(ip, broke, 100, false))
		}
	}
	if f := m.SignerFactor(good); f != 1 {
		t.Errorf("paying signer: %v", f)
	}
	if f := m.SignerFactor(broke); f > 0.01 {
		t.Errorf("never-paying signer: %v", f)
	}
	attacker := ip4(66, 66, 66, 66)
	for range 300 {
		m.Penalize(attacker, 100)
	}
	if f := m.Forward(attacker, good); f > m.IPFactor(attacker) {
		t.Errorf("impersonating a good payer lifts the attacker: %v > %v", f, m.IPFactor(attacker))
	}
}

func TestPrefixes(t *testing.T) {
	f := func(addr, wantNear, wantWide string) {
		t.Helper()
		n, w := IPOf(netip.MustParseAddr(addr)).prefixes()
		if got := n.Addr().String(); got != wantNear {
			t.Errorf("%s: near %s, want %s", addr, got, wantNear)
		}
		if got := w.Addr().String(); got != wantWide {
			t.Errorf("%s: wide %s, want %s", addr, got, wantWide)
		}
	}
	f("192.0.2.77", "192.0.2.0", "192.0.0.0")
	f("::ffff:192.0.2.77", "192.0.2.0", "192.0.0.0")
	f("2001:db8:aaaa:bbbb:cccc::1", "2001:db8:aaaa::", "2001:db8::")
	// An IPv4 prefix never equals an IPv6 one.
	n4, _ := ip4(0, 0, 0, 1).prefixes()
	n6, _ := IPOf(netip.MustParseAddr("::")).prefixes()
	if n4 == n6 {
		t.Fatal("IPv4 and IPv6 prefixes collide")
	}
}

func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	f := func(name string, edit func(*Params), want string) {
		t.Helper()
		p := DefaultParams()
		edit(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	f("window 0", func(p *Params) { p.Window = 0 }, "window")
	f("prior weight 0", func(p *Params) { p.PriorWeight = 0 }, "prior weight")
	f("prior weight NaN", func(p *Params) { p.PriorWeight = math.NaN() }, "prior weight")
	f("unknown prior 2", func(p *Params) { p.UnknownPrior = 2 }, "unknown prior")
	f("min observations -1", func(p *Params) { p.MinObservations = -1 }, "min observations")
	f("max IPs 0", func(p *Params) { p.MaxIPs = 0 }, "max IPs")
	f("max prefixes huge", func(p *Params) { p.MaxPrefixes = MaxTableSize + 1 }, "max prefixes")
	f("max signers 0", func(p *Params) { p.MaxSigners = 0 }, "max signers")
	f("min score 0", func(p *Params) { p.MinScore = 0 }, "min score")
	p := DefaultParams()
	p.Window, p.MaxIPs = 0, 0
	if err := p.Validate(); err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("two errors not joined: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted invalid params")
		}
	}()
	New(p)
}

// TestEvictsLeastRecentlyUpdated: a full table evicts the entry updated
// longest ago, whatever its slot.
func TestEvictsLeastRecentlyUpdated(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs, p.MaxPrefixes = 3, 64
	m := New(p)
	a, b, c, d := ip4(1, 0, 0, 1), ip4(2, 0, 0, 1), ip4(3, 0, 0, 1), ip4(4, 0, 0, 1)
	m.Penalize(a, 1)
	m.Penalize(b, 1)
	m.Penalize(c, 1)
	m.Penalize(a, 1) // b is now the least recently updated
	m.Penalize(d, 1)
	for ip, want := range map[IP]bool{a: true, b: false, c: true, d: true} {
		if _, ok := m.IPScore(ip); ok != want {
			t.Errorf("%v held: %v, want %v", ip, ok, want)
		}
	}
	if st := m.Stats(); st.IPs != 3 || st.EvictedIPs != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSetParamsAndClone(t *testing.T) {
	m := filled(t, DefaultParams(), 3, 20_000)
	c := m.Clone()
	if d := Diff(m, c, 0); d != nil {
		t.Fatalf("clone differs: %v", d)
	}
	c.Penalize(ip4(1, 1, 1, 1), 1)
	if Diff(m, c, 0) == nil {
		t.Fatal("clone shares state")
	}
	p := m.Params()
	p.MaxIPs, p.Window = 10, 20
	if err := m.SetParams(p); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if st.IPs != 10 || m.Params() != p {
		t.Fatalf("after SetParams: %d IPs, params %+v", st.IPs, m.Params())
	}
	for _, e := range m.Snapshot().IPs {
		if e.N > 20 {
			t.Fatalf("record averages %v outcomes, window 20", e.N)
		}
	}
	bad := p
	bad.Window = -1
	if err := m.SetParams(bad); err == nil {
		t.Fatal("SetParams accepted a bad window")
	}
}

func TestDiffTolerance(t *testing.T) {
	a := filled(t, smallParams(), 1, 2000)
	b := a.Clone()
	b.ips.slots[0].r.claim *= 1 + 1e-14
	if Diff(a, b, 0) == nil {
		t.Error("tol 0 misses a one-ulp change")
	}
	if d := Diff(a, b, 1e-12); d != nil {
		t.Errorf("tol 1e-12 reports %v", d)
	}
}

// TestForwardFactors: Forward is IPFactor × SignerFactor bit for bit, for
// known and unknown keys alike.
func TestForwardFactors(t *testing.T) {
	m := filled(t, smallParams(), 2, 5000)
	steps := sequence(9, 500)
	for _, s := range steps {
		ip, sg := s.o.IP, s.o.Signer
		if f := m.Forward(ip, sg); f != m.IPFactor(ip)*m.SignerFactor(sg) || !(f > 0 && f <= 1) {
			t.Fatalf("forward %v vs %v × %v", f, m.IPFactor(ip), m.SignerFactor(sg))
		}
	}
}

// TestObserveWithoutFee: an unpaid observation without a fee (pack mode's
// blame on the sender) counts as a failure at the sender's usual claim,
// exactly as Penalize with an unknown claim does.
func TestObserveWithoutFee(t *testing.T) {
	a, b := New(DefaultParams()), New(DefaultParams())
	ip := ip4(10, 9, 0, 1)
	for i := range 1000 {
		o := tx(ip, signer(1), 3, true)
		a.Observe(o)
		b.Observe(o)
		if i%10 == 0 {
			a.Observe(Observation{IP: ip, Signer: signer(1)})
			b.Penalize(ip, 0)
		}
	}
	if fa, fb := a.IPFactor(ip), b.IPFactor(ip); fa != fb || !(fa > 0.85 && fa < 0.95) {
		t.Fatalf("factor after 10 %% fee-less unpaid observations %v, after as many unknown-claim penalties %v", fa, fb)
	}
}

// TestUnpaidFloor: among senders that bring nothing, one whose packets
// verify (fees too low to be included) keeps the unpaid floor and ranks
// above one whose claims mostly fail, even if the latter was paid once:
// a sender with half or more of its claims failing scores MinScore (so
// the gate can refuse it unparsed).
func TestUnpaidFloor(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	low, spam := ip4(10, 2, 0, 1), ip4(198, 51, 100, 7)
	m.Observe(tx(spam, signer(9), 1, true)) // one nearly free transaction paid
	for i := range 3 * p.Window {
		m.Observe(tx(low, signer(1), 10, false))
		if i%3 == 0 {
			m.Observe(tx(spam, signer(9), 1, false))
		} else {
			m.Penalize(spam, 1500)
		}
	}
	fl, fs := m.IPFactor(low), m.IPFactor(spam)
	if fl != p.UnpaidFloor || fs != p.MinScore {
		t.Fatalf("never-paid valid sender %v (want %v), mostly failing sender %v", fl, p.UnpaidFloor, fs)
	}
	if fl*10 <= fs*1500 {
		t.Fatal("the failing sender's claims still outrank the valid unpaid sender")
	}
	// Its payer paid nothing, as its IP predicted: the signer does not
	// sink it further (else it would fall below the failing sender).
	if f := m.Forward(low, signer(1)); f < fl/2 || f*10 <= fs*1500 {
		t.Fatalf("forward of the unpaid sender with its own payer %v, want about its IP factor %v", f, fl)
	}
	q := p
	q.UnpaidFloor = 0
	if err := m.SetParams(q); err != nil || m.IPFactor(low) != p.MinScore {
		t.Fatalf("floor off: %v, %v", m.IPFactor(low), err)
	}
}

// TestPayerExplainsUnpaid: an honest sender whose one payer of eight has
// an empty account (unpaid outcomes of the sender's fault) keeps its IPs' factor near 1 (the empty payer alone
// sinks), as a sender without such a payer does; a sender rotating a
// fresh unpaid payer per transaction still sinks its IP, and so does a
// sender whose only payer is never paid.
func TestPayerExplainsUnpaid(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	ranked := New(p)
	mixed, clean, sybil, lone := ip4(10, 1, 0, 1), ip4(10, 3, 0, 1), ip4(100, 64, 0, 1), ip4(10, 2, 0, 1)
	for i := range 4 * p.Window {
		s := uint32(i % 8)
		fault := func(o Observation) Observation { o.SenderFault = !(o.ExecNanos > 0); return o }
		m.Observe(fault(tx(mixed, signer(s), 10, s != 0))) // payer 0 is empty
		m.Observe(tx(clean, signer(100+s), 10, true))
		m.Observe(fault(tx(sybil, signer(1000+uint32(i)), 10, false))) // a fresh payer each time
		m.Observe(fault(tx(lone, signer(99), 10, false)))
		ranked.Observe(tx(mixed, signer(s), 10, s != 0)) // unpaid for ranking too low: not explained away
	}
	fm, fc := m.IPFactor(mixed), m.IPFactor(clean)
	if fm < 0.97 || fc < 0.99 {
		t.Fatalf("IP factor of the sender with one empty payer %v, of the clean one %v: want both near 1", fm, fc)
	}
	if f := m.Forward(mixed, signer(0)); f > 0.05 {
		t.Fatalf("the empty payer's transactions score %v", f)
	}
	if f := m.Forward(mixed, signer(3)); f < 0.97 {
		t.Fatalf("a funded payer of the mixed sender scores %v", f)
	}
	if f := m.IPFactor(sybil); f > 0.01 {
		t.Fatalf("the fresh-payer sender's IP factor %v, want near the floor", f)
	}
	if f := m.IPFactor(lone); f != p.UnpaidFloor {
		t.Fatalf("the never-paid lone payer's IP factor %v, want the floor %v", f, p.UnpaidFloor)
	}
	// The sidecar's unpaid outcomes (verified, ranked too low) depend on
	// the ranking itself: they still charge the IP.
	if f := ranked.IPFactor(mixed); f > 0.9 {
		t.Fatalf("IP factor with unpaid outcomes of ranking %v, want about 7/8", f)
	}
}

// market feeds m paid transactions from a few busy IPs of 192.0.2.0/24
// claiming 100 to 199 lamports per CU, so the inclusion bar settles near
// their low quantile (about 105).
func market(m *IPSigner, n int) {
	for i := range n {
		m.Observe(tx(ip4(192, 0, 2, byte(i%8)), signer(uint32(500+i%8)), uint64(100+i*37%100), true))
	}
}

// TestInclusionBarLearnt: the bar tracks the BarQuantile of paid claims,
// follows them down when the blocks take cheaper transactions, and stays
// 0 while disabled.
func TestInclusionBarLearnt(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	if b := m.Stats().Bar; b != 0 {
		t.Fatalf("bar of an empty model = %v, want 0", b)
	}
	market(m, 20_000)
	if b := m.Stats().Bar; b < 100 || b > 112 {
		t.Fatalf("bar after paid claims uniform over 100..199 = %v, want their 5 %% quantile (about 105)", b)
	}
	for i := range 2_000 { // the blocks now take claims of 10..19
		m.Observe(tx(ip4(192, 0, 2, 9), signer(600), uint64(10+i%10), true))
	}
	if b := m.Stats().Bar; b < 9 || b > 12 {
		t.Fatalf("bar after paid claims of 10..19 = %v, want about 10.5", b)
	}
	p.BarQuantile = 0
	m = New(p)
	market(m, 1_000)
	if b := m.Stats().Bar; b != 0 {
		t.Fatalf("bar with BarQuantile 0 = %v, want 0", b)
	}
}

// TestOutbidNeutral: a verified transaction left unpaid that claimed less
// than the inclusion bar was outbid, not a sign that its sender does not
// pay: an honest sender whose cheap transactions miss the blocks keeps
// its factor (with the bar disabled it sinks to about a half), while a
// sender claiming above the bar and never paying still sinks to the
// unpaid floor, bar or not.
func TestOutbidNeutral(t *testing.T) {
	honest, never := ip4(10, 1, 1, 1), ip4(10, 2, 2, 2)
	for _, tc := range []struct {
		name        string
		barQuantile float64
		wantHonest  float64 // IPFactor, ± 0.05
	}{
		{"bar", 0.05, 1},
		{"no bar", 0, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			p.BarQuantile = tc.barQuantile
			m := New(p)
			market(m, 5_000)
			for i := range 2 * p.Window {
				// The honest sender: one transaction in four claims 150 and
				// is paid, three claim 50 (below the bar) and are outbid.
				m.Observe(tx(honest, signer(1), 150, true))
				for range 3 {
					m.Observe(tx(honest, signer(1), 50, false))
				}
				// A fresh payer per transaction, claiming 1 000 (above
				// the bar), never paid.
				m.Observe(tx(never, signer(uint32(10_000+i)), 1_000, false))
				market(m, 4)
			}
			approx(t, "honest sender's IP factor", m.IPFactor(honest), tc.wantHonest, 0.05)
			if tc.barQuantile > 0 {
				approx(t, "honest sender's signer factor", m.SignerFactor(signer(1)), 1, 0.05)
			}
			if f := m.IPFactor(never); f != p.UnpaidFloor {
				t.Fatalf("never-paying sender above the bar: factor %v, want the unpaid floor %v", f, p.UnpaidFloor)
			}
			// A fee payer whose transactions could never pay (SenderFault)
			// is not excused by claiming little.
			m2 := New(p)
			market(m2, 5_000)
			bad := ip4(10, 3, 3, 3)
			for i := range 2 * p.Window {
				o := tx(bad, signer(uint32(20_000+i)), 50, false)
				o.SenderFault = true
				m2.Observe(o)
			}
			if f := m2.IPFactor(bad); f != p.UnpaidFloor {
				t.Fatalf("sender-fault unpaid below the bar: factor %v, want the unpaid floor %v", f, p.UnpaidFloor)
			}
		})
	}
}
