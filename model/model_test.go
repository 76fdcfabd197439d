package model

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func ip4(a, b, c, d byte) IP { return IPv4([4]byte{a, b, c, d}) }

func signer(n uint16) Signer {
	var s Signer
	s[0], s[1] = byte(n>>8), byte(n)
	s[31] = 0xAA
	return s
}

// rows returns n observations of (ip, s) that were not executed and are
// worth value each under DefaultParams (fee = value × 100 000 ns).
func rows(ip IP, s Signer, n int, value float64) []Observation {
	out := make([]Observation, n)
	for i := range out {
		out[i] = Observation{IP: ip, Signer: s, Fee: uint64(value * 100_000)}
	}
	return out
}

func cat(parts ...[]Observation) []Observation {
	var out []Observation
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// wantScore checks an exact score and, as a hand-computed sanity check, its
// decimal value.
func wantScore(t *testing.T, what string, got, exact, approx float64) {
	t.Helper()
	if math.Float64bits(got) != math.Float64bits(exact) {
		t.Errorf("%s = %v, want exactly %v", what, got, exact)
	}
	if math.Abs(got-approx) > 1e-12*max(1, math.Abs(approx)) {
		t.Errorf("%s = %v, want about %v", what, got, approx)
	}
}

func ipScore(t *testing.T, m *IPSigner, ip IP) float64 {
	t.Helper()
	s, ok := m.IPScore(ip)
	if !ok {
		t.Fatalf("IP %s unknown", ip)
	}
	return s
}

func signerScore(t *testing.T, m *IPSigner, s Signer) float64 {
	t.Helper()
	v, ok := m.SignerScore(s)
	if !ok {
		t.Fatalf("signer %d unknown", s[1])
	}
	return v
}

func TestValue(t *testing.T) {
	p := DefaultParams()
	f := func(fee, exec uint64, want float64) {
		t.Helper()
		if got := Value(p, Observation{Fee: fee, ExecNanos: exec}); got != want {
			t.Errorf("Value(fee %d, exec %d) = %v, want %v", fee, exec, got, want)
		}
	}
	f(5000, 0, 0.05)               // not executed: 100 µs assumed
	f(5000, 1000, 50)              // executed: 5 lamports/ns × 10
	f(0, 0, 0)                     // free
	f(1<<63, 1, float64(1<<63)*10) // large, still finite
}

func TestEmptyModel(t *testing.T) {
	m := New(DefaultParams())
	if got := m.Forward(ip4(1, 2, 3, 4), signer(1)); got != 1 {
		t.Fatalf("empty model Forward = %v, want 1", got)
	}
	if st := m.Stats(); st.MedianIP != 1 || st.MedianSigner != 1 || st.IPs != 0 {
		t.Fatalf("empty model stats %+v", st)
	}
}

func TestNewKeysEnterAtMean(t *testing.T) {
	m := New(DefaultParams())
	a, s := ip4(10, 0, 0, 1), signer(1)
	batch := cat(rows(a, s, 1, 1), rows(a, s, 1, 2), rows(a, s, 1, 3), rows(a, s, 1, 4), rows(a, s, 1, 5))
	m.Learn(batch)
	wantScore(t, "new IP", ipScore(t, m, a), 3, 3) // (1+2+3+4+5)/5
	wantScore(t, "new signer", signerScore(t, m, s), 3, 3)
	wantScore(t, "Forward", m.Forward(a, s), 9, 9)
	// Unknown keys get the median of one score: 3 × 3.
	wantScore(t, "Forward unknown", m.Forward(ip4(9, 9, 9, 9), signer(99)), 9, 9)
}

func TestMinObservations(t *testing.T) {
	m := New(DefaultParams())
	a, b, s := ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), signer(1)
	m.Learn(cat(rows(a, s, 5, 2), rows(b, s, 4, 8))) // b: 4 < 5 observations
	if _, ok := m.IPScore(b); ok {
		t.Fatal("IP with 4 observations entered the table")
	}
	wantScore(t, "a", ipScore(t, m, a), 2, 2)
	// The signer has 9 observations: mean (5·2 + 4·8)/9.
	wantScore(t, "signer", signerScore(t, m, s), (2.0*5+8*4)/9, 42.0/9)

	// A known key with too few observations counts as absent: it moves
	// toward the median (2, its own score), not toward its 4 values of 100.
	m.Learn(cat(rows(a, s, 4, 100), rows(b, s, 5, 6)))
	wantScore(t, "a after 4 observations", ipScore(t, m, a), ema(2, 2, 0.05), 2)
	wantScore(t, "b enters", ipScore(t, m, b), 6, 6)
}

// TestEMAAndMedianFallback: A=2, B=4, C=9 (median 4). A batch with A (6) and
// a new D (1): A → 0.95·2 + 0.05·6 = 2.2; B → 0.95·4 + 0.05·4 = 4;
// C → 0.95·9 + 0.05·4 = 8.75; D enters at 1. New median (2.2+4)/2 = 3.1.
func TestEMAAndMedianFallback(t *testing.T) {
	m := New(DefaultParams())
	a, b, c, d := ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), ip4(10, 0, 0, 3), ip4(10, 0, 0, 4)
	sa, sb, sc, sd := signer(1), signer(2), signer(3), signer(4)
	m.Learn(cat(rows(a, sa, 5, 2), rows(b, sb, 5, 4), rows(c, sc, 5, 9)))
	if st := m.Stats(); st.MedianIP != 4 || st.MedianSigner != 4 {
		t.Fatalf("medians %v %v, want 4 4", st.MedianIP, st.MedianSigner)
	}
	m.Learn(cat(rows(a, sa, 5, 6), rows(d, sd, 5, 1)))
	for _, tc := range []struct {
		name        string
		got         float64
		exact, hand float64
	}{
		{"A", ipScore(t, m, a), ema(2, 6, 0.05), 2.2},
		{"B", ipScore(t, m, b), ema(4, 4, 0.05), 4},
		{"C", ipScore(t, m, c), ema(9, 4, 0.05), 8.75},
		{"D", ipScore(t, m, d), 1, 1},
		{"signer A", signerScore(t, m, sa), ema(2, 6, 0.05), 2.2},
		{"signer C", signerScore(t, m, sc), ema(9, 4, 0.05), 8.75},
		{"signer D", signerScore(t, m, sd), 1, 1},
	} {
		wantScore(t, tc.name, tc.got, tc.exact, tc.hand)
	}
	st := m.Stats()
	wantScore(t, "IP median", st.MedianIP, 3.1000000000000001, 3.1)
	// Unknown IP, known signer D: median × 1.
	wantScore(t, "Forward(unknown, D)", m.Forward(ip4(1, 1, 1, 1), sd), st.MedianIP, 3.1)
}

// TestPruneKeepsExtremes: scores 1, 2, 3, 10, 100 with MaxIPs 3: the median
// is 3, distances 2, 1, 0, 7, 97, so 3 and 2 go.
func TestPruneKeepsExtremes(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs = 3
	m := New(p)
	s := signer(1)
	values := []float64{1, 2, 3, 10, 100}
	var batch []Observation
	for i, v := range values {
		batch = append(batch, rows(ip4(10, 0, 0, byte(i)), s, 5, v)...)
	}
	m.Learn(batch)
	kept := map[float64]bool{}
	for i, v := range values {
		if sc, ok := m.IPScore(ip4(10, 0, 0, byte(i))); ok {
			if sc != v {
				t.Errorf("IP %d score %v, want %v", i, sc, v)
			}
			kept[v] = true
		}
	}
	if len(kept) != 3 || !kept[1] || !kept[10] || !kept[100] {
		t.Fatalf("kept %v, want 1, 10, 100", kept)
	}
	if st := m.Stats(); st.PrunedIPs != 2 || st.IPs != 3 || st.MedianIP != 10 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPruneTiesByKey: scores 1, 2, 4, 5 (median 3) and MaxIPs 3: 2 and 4
// are equally close; the one with the lower key bytes goes.
func TestPruneTiesByKey(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs = 3
	for _, lowKeyValue := range []float64{2, 4} {
		m := New(p)
		s := signer(1)
		other := 6 - lowKeyValue
		m.Learn(cat(
			rows(ip4(10, 0, 0, 1), s, 5, 1),
			rows(ip4(10, 0, 0, 2), s, 5, lowKeyValue), // lower key bytes
			rows(ip4(10, 0, 0, 3), s, 5, other),
			rows(ip4(10, 0, 0, 4), s, 5, 5),
		))
		if _, ok := m.IPScore(ip4(10, 0, 0, 2)); ok {
			t.Fatalf("tie (low key has %v): the lower key survived", lowKeyValue)
		}
		if sc, ok := m.IPScore(ip4(10, 0, 0, 3)); !ok || sc != other {
			t.Fatalf("tie (low key has %v): the higher key was removed", lowKeyValue)
		}
	}
}

// TestPenalize: A=2, B=4, C=9. Penalize(A) → 0.02, still learned: the
// median of {0.02, 4, 9} is 4. Penalize(E), unknown, → penalty-only at
// median × 0.01 = 0.04, outside the median, which stays 4.
func TestPenalize(t *testing.T) {
	m := New(DefaultParams())
	a, b, c, e := ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), ip4(10, 0, 0, 3), ip4(10, 0, 0, 5)
	s := signer(1)
	m.Learn(cat(rows(a, s, 5, 2), rows(b, s, 5, 4), rows(c, s, 5, 9)))
	m.Penalize(a)
	wantScore(t, "A", ipScore(t, m, a), 2*0.01, 0.02)
	if got := m.Stats().MedianIP; got != 4 {
		t.Fatalf("median %v, want 4", got)
	}
	m.Penalize(e)
	wantScore(t, "E (unknown)", ipScore(t, m, e), 4*0.01, 0.04)
	sig := signerScore(t, m, s)
	wantScore(t, "Forward(E, s)", m.Forward(e, s), 4*0.01*sig, 0.04*sig)
	st := m.Stats()
	wantScore(t, "median", st.MedianIP, 4, 4)
	if st.Penalties != 2 || st.PenalizedNew != 1 || st.IPs != 3 || st.PenalizedIPs != 1 {
		t.Fatalf("stats %+v", st)
	}
	wantScore(t, "Forward(unknown, s)", m.Forward(ip4(10, 0, 0, 9), s), 4*sig, 4*sig)
	m.Penalize(e) // a second penalty: 4 × 0.01 × 0.01
	wantScore(t, "E after two penalties", ipScore(t, m, e), 4*float64(0.01*0.01), 0.0004)
	// A penalty on an empty model: median 1 × 0.01.
	m2 := New(DefaultParams())
	m2.Penalize(e)
	wantScore(t, "E on empty model", ipScore(t, m2, e), 0.01, 0.01)
}

// TestPenalizeFloodBounded: unknown IPs keep entering as penalty-only until
// there are 2·MaxIPs of them, then they are pruned back to MaxIPs.
func TestPenalizeFloodBounded(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs = 100
	m := New(p)
	for i := 0; i < 1000; i++ {
		m.Penalize(ip4(10, 1, byte(i>>8), byte(i)))
		if st := m.Stats(); st.PenalizedIPs > 2*p.MaxIPs || st.IPs != 0 {
			t.Fatalf("after %d penalties the table holds %+v", i+1, st)
		}
	}
	if st := m.Stats(); st.PenalizedNew != 1000 || st.PrunedIPs == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIPKeys(t *testing.T) {
	f := func(s string) IP {
		t.Helper()
		return IPOf(netip.MustParseAddr(s))
	}
	if f("1.2.3.4") != ip4(1, 2, 3, 4) || f("::ffff:1.2.3.4") != ip4(1, 2, 3, 4) {
		t.Fatal("IPv4 and IPv4-mapped addresses must share a key")
	}
	if IPv6(netip.MustParseAddr("::ffff:1.2.3.4").As16()) != ip4(1, 2, 3, 4) {
		t.Fatal("IPv6() of a mapped address must give the IPv4 key")
	}
	if f("2001:db8:1:2:aaaa::1") != f("2001:db8:1:2:bbbb:cccc:dddd:eeee%eth0") {
		t.Fatal("one /64 must give one key")
	}
	if f("2001:db8:1:2::1") == f("2001:db8:1:3::1") {
		t.Fatal("two /64s must give two keys")
	}
	if got := f("2001:db8:1:2:aaaa::1").String(); got != "2001:db8:1:2::/64" {
		t.Fatalf("String = %q", got)
	}
	if got := ip4(1, 2, 3, 4).String(); got != "1.2.3.4" {
		t.Fatalf("String = %q", got)
	}
	if got := ip4(1, 2, 3, 4).Addr(); got != netip.MustParseAddr("1.2.3.4") {
		t.Fatalf("Addr = %v", got)
	}
	if IPOf(netip.Addr{}) != (IP{}) {
		t.Fatal("zero Addr must give the zero IP")
	}
}

// TestIPv6KeyedBySlash64: observations and penalties from different
// addresses of one /64 land on one entry; raw 16-byte values are
// canonicalised by the model too.
func TestIPv6KeyedBySlash64(t *testing.T) {
	m := New(DefaultParams())
	s := signer(1)
	x := IP(netip.MustParseAddr("2001:db8:1:2::1").As16())         // raw, not canonical
	y := IP(netip.MustParseAddr("2001:db8:1:2:ffff::ffff").As16()) // same /64
	z := IPOf(netip.MustParseAddr("2001:db8:1:3::1"))              // other /64
	m.Learn(cat(rows(x, s, 3, 2), rows(y, s, 2, 2), rows(z, s, 5, 8)))
	wantScore(t, "/64 from 5 observations over 2 addresses", ipScore(t, m, x), 2, 2)
	m.Penalize(y)
	wantScore(t, "penalised via another address", ipScore(t, m, x), 0.02, 0.02)
	if st := m.Stats(); st.IPs != 2 || st.PenalizedNew != 0 {
		t.Fatalf("stats %+v", st)
	}
	if m.Forward(x, s) != m.Forward(IPOf(netip.MustParseAddr("2001:db8:1:2:1:2:3:4")), s) {
		t.Fatal("Forward differs within one /64")
	}
}

func TestObserveLearnsAtBatchSize(t *testing.T) {
	p := DefaultParams()
	p.BatchSize = 10
	m := New(p)
	batch := rows(ip4(1, 1, 1, 1), signer(1), 10, 3)
	for i, o := range batch {
		if learned := m.Observe(o); learned != (i == 9) {
			t.Fatalf("Observe #%d learned = %v", i+1, learned)
		}
	}
	st := m.Stats()
	if st.Learns != 1 || st.Pending != 0 || st.Observations != 10 || st.IPs != 1 {
		t.Fatalf("stats %+v", st)
	}
	wantScore(t, "IP", ipScore(t, m, ip4(1, 1, 1, 1)), 3, 3)
}

func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	f := func(change func(*Params), want string) {
		t.Helper()
		p := DefaultParams()
		change(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want an error containing %q", err, want)
		}
	}
	f(func(p *Params) { p.BatchSize = 0 }, "batch size must be between 1")
	f(func(p *Params) { p.BatchSize = MaxBatchSize + 1 }, "batch size")
	f(func(p *Params) { p.MinObservations = 0 }, "min observations must be at least 1")
	f(func(p *Params) { p.MinObservations = 401 }, "exceeds the batch size")
	f(func(p *Params) { p.Alpha = -0.1 }, "alpha")
	f(func(p *Params) { p.Alpha = math.NaN() }, "alpha")
	f(func(p *Params) { p.Alpha = 1.5 }, "alpha")
	f(func(p *Params) { p.ExecutedMultiplier = 0 }, "executed multiplier")
	f(func(p *Params) { p.ExecutedMultiplier = math.Inf(1) }, "executed multiplier")
	f(func(p *Params) { p.AssumedExecNanos = 0 }, "assumed execution time")
	f(func(p *Params) { p.PenaltyFactor = 2 }, "penalty factor")
	f(func(p *Params) { p.PenaltyFactor = math.NaN() }, "penalty factor")
	f(func(p *Params) { p.MaxIPs = 0 }, "max IPs")
	f(func(p *Params) { p.MaxSigners = MaxTableSize + 1 }, "max signers")
	f(func(p *Params) { p.MinScore = 0 }, "min score")
	f(func(p *Params) { p.MinScore = 1e-200 }, "min score")
	f(func(p *Params) { p.MinScore = math.Inf(1) }, "min score")
	f(func(p *Params) { p.MinScore = math.NaN() }, "min score")

	p := DefaultParams()
	p.MaxIPs, p.Alpha = 0, 2
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "max IPs") || !strings.Contains(err.Error(), "alpha") {
		t.Errorf("Validate() = %v, want both problems reported", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New with invalid params did not panic")
		}
	}()
	New(p)
}

func TestSetParams(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs = 100
	m := New(p)
	for i := 0; i < 150; i++ {
		m.Penalize(ip4(10, 2, 0, byte(i)))
	}
	for _, o := range rows(ip4(1, 1, 1, 1), signer(1), 7, 3) {
		m.Observe(o)
	}
	q := p
	q.MaxIPs, q.BatchSize = 50, 5
	if err := m.SetParams(q); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if st.Learns != 1 || st.Pending != 0 || st.IPs > 50 || st.PenalizedIPs > 50 {
		t.Fatalf("after SetParams: %+v", st)
	}
	if m.Params() != q {
		t.Fatal("params not replaced")
	}
	bad := q
	bad.Alpha = -1
	if err := m.SetParams(bad); err == nil || m.Params() != q {
		t.Fatal("invalid params accepted")
	}
}

func TestClone(t *testing.T) {
	m := New(DefaultParams())
	m.Learn(cat(rows(ip4(1, 1, 1, 1), signer(1), 5, 3), rows(ip4(1, 1, 1, 2), signer(2), 5, 7)))
	m.Observe(rows(ip4(1, 1, 1, 3), signer(3), 1, 1)[0])
	c := m.Clone()
	if d := Diff(m, c, 0); d != nil {
		t.Fatalf("clone differs: %v", d)
	}
	c.Penalize(ip4(1, 1, 1, 1))
	if d := Diff(m, c, 0); len(d) != 1 || !strings.Contains(d[0], "1.1.1.1") {
		t.Fatalf("Diff after changing the clone = %v", d)
	}
	if sc := ipScore(t, m, ip4(1, 1, 1, 1)); sc != 3 {
		t.Fatalf("changing the clone changed the original: %v", sc)
	}
}

func TestDiffTolerance(t *testing.T) {
	a, b := New(DefaultParams()), New(DefaultParams())
	a.Learn(rows(ip4(1, 1, 1, 1), signer(1), 5, 3))
	b.Learn(rows(ip4(1, 1, 1, 1), signer(1), 5, 3))
	b.ips.slab[0].score = math.Nextafter(3, 4)
	if d := Diff(a, b, 0); len(d) != 1 {
		t.Fatalf("Diff tol 0 = %v, want one difference", d)
	}
	if d := Diff(a, b, 1e-12); d != nil {
		t.Fatalf("Diff tol 1e-12 = %v, want none", d)
	}
	b.Learn(rows(ip4(1, 1, 1, 2), signer(1), 5, 3))
	if d := Diff(a, b, 1e-12); len(d) != 1 || !strings.Contains(d[0], "only in the second") {
		t.Fatalf("Diff = %v", d)
	}
}

// TestForwardFactors: Forward is IPFactor × SignerFactor bit for bit;
// MaxSignerFactor is the highest SignerFactor over learned and unknown
// signers, and MinIPFactor at most every IPFactor, through learning,
// penalties and pruning.
func TestForwardFactors(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs, p.MaxSigners, p.BatchSize = 64, 32, 40
	m := New(p)
	rng := rand.New(rand.NewPCG(3, 4))
	signer := func(i int) Signer {
		var s Signer
		s[0], s[1] = byte(i), byte(i>>8)
		return s
	}
	unknown := signer(60000)
	check := func(step int) {
		t.Helper()
		best := m.SignerFactor(unknown)
		for j := range 100 {
			best = max(best, m.SignerFactor(signer(j)))
		}
		if got := m.MaxSignerFactor(); got != best {
			t.Fatalf("step %d: MaxSignerFactor %v, the best signer has %v", step, got, best)
		}
		for i := range 80 {
			ip := ip4(10, 0, 0, byte(i))
			for _, j := range []int{0, 3, 47, 99, 60000} {
				if f, w := m.Forward(ip, signer(j)), m.IPFactor(ip)*m.SignerFactor(signer(j)); f != w {
					t.Fatalf("step %d: Forward(%v, signer %d) = %v, factors give %v", step, ip, j, f, w)
				}
			}
			if lo := m.MinIPFactor(); lo > m.IPFactor(ip) {
				t.Fatalf("step %d: MinIPFactor %v above %v's %v", step, lo, ip, m.IPFactor(ip))
			}
		}
	}
	check(0)
	for step := 1; step <= 30; step++ {
		for range 40 {
			m.Observe(Observation{IP: ip4(10, 0, 0, byte(rng.IntN(6))), Signer: signer(rng.IntN(6) + 6*(step%8)),
				Fee: uint64(rng.IntN(1_000_000)), ExecNanos: uint64(rng.IntN(3)) * 50_000})
		}
		for range rng.IntN(20) {
			m.Penalize(ip4(10, 0, 0, byte(rng.IntN(80))))
		}
		check(step)
	}
	if m.Stats().Signers == 0 || m.Stats().Learns == 0 {
		t.Fatal("nothing learned: the test exercises no learned signer")
	}
}
