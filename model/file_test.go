package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// randomObs returns an observation from a random IPv4 address or a raw
// (not yet canonical) IPv6 address, a random signer, a random fee and, half
// the time, an execution time.
func randomObs(r *rand.Rand) Observation {
	var o Observation
	if r.IntN(4) == 0 {
		var a [16]byte
		binary.LittleEndian.PutUint64(a[:8], r.Uint64())
		binary.LittleEndian.PutUint64(a[8:], r.Uint64())
		a[0] = 0x20
		o.IP = IP(a)
	} else {
		o.IP = ip4(byte(r.IntN(224)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)))
	}
	binary.LittleEndian.PutUint64(o.Signer[:], r.Uint64())
	binary.LittleEndian.PutUint64(o.Signer[24:], r.Uint64())
	o.Fee = 5000 + r.Uint64N(2_000_000)
	if r.IntN(2) == 0 {
		o.ExecNanos = 1 + r.Uint64N(1_000_000)
	}
	return o
}

// filledModel learns batches of random observations (every key enters:
// MinObservations 1), leaves extra observations pending and penalises
// known and unknown IPs.
func filledModel(tb testing.TB, seed uint64, batches, extra int) *IPSigner {
	tb.Helper()
	p := DefaultParams()
	p.MinObservations = 1
	m := New(p)
	r := rand.New(rand.NewPCG(seed, 1))
	var seen []IP
	for range batches*p.BatchSize + extra {
		o := randomObs(r)
		m.Observe(o)
		if r.IntN(50) == 0 {
			seen = append(seen, o.IP)
		}
	}
	for i := range 200 {
		if i%2 == 0 && len(seen) > 0 {
			m.Penalize(seen[r.IntN(len(seen))])
		} else {
			m.Penalize(randomObs(r).IP)
		}
	}
	return m
}

func encode(tb testing.TB, m *IPSigner) []byte {
	tb.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSaveLoadIdenticalForward(t *testing.T) {
	m := filledModel(t, 1, 25, 123)
	st := m.Stats()
	if st.IPs < 9000 || st.Signers < 9000 || st.Pending != 123 {
		t.Fatalf("model not filled as intended: %+v", st)
	}
	path := filepath.Join(t.TempDir(), "model.bin")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(m, l, 0); d != nil {
		t.Fatalf("loaded model differs: %v", d)
	}
	if m.Stats() != l.Stats() {
		t.Fatalf("stats %+v, loaded %+v", m.Stats(), l.Stats())
	}
	checkTable(t, "loaded ips", l.ips)
	checkTable(t, "loaded signers", l.signers)

	// 10 000 keys: half known (from the tables), half random.
	snap := m.Snapshot()
	r := rand.New(rand.NewPCG(2, 2))
	for i := range 10_000 {
		ip, s := randomObs(r).IP, randomObs(r).Signer
		if i%2 == 0 {
			ip = snap.IPs[r.IntN(len(snap.IPs))].IP
			s = snap.Signers[r.IntN(len(snap.Signers))].Signer
		}
		a, b := m.Forward(ip, s), l.Forward(ip, s)
		if math.Float64bits(a) != math.Float64bits(b) {
			t.Fatalf("key %d: Forward %v, after load %v", i, a, b)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, encode(t, l)) {
		t.Fatal("re-encoding the loaded model changes the bytes")
	}
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.bin")
	a := New(DefaultParams())
	a.Learn(rows(ip4(1, 2, 3, 4), signer(1), 5, 2))
	for range 2 { // create, then replace
		if err := a.Save(path); err != nil {
			t.Fatal(err)
		}
		a.Penalize(ip4(1, 2, 3, 4))
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "model.bin" {
		t.Fatalf("directory holds %v, want only model.bin", ents)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode())
	}
	bad := filepath.Join(dir, "missing", "model.bin")
	if err := a.Save(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Save into a missing directory: %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.bin")
	m, err := Load(path)
	if m != nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(missing) = %v, %v", m, err)
	}
	if _, err := Load(t.TempDir()); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(directory) = %v", err)
	}
}

// small returns the encoding of a small model with an IPv4 and an IPv6
// entry, two signers and one pending observation.
func small(t *testing.T) []byte {
	t.Helper()
	m := New(DefaultParams())
	v6 := IPOf(netip.MustParseAddr("2001:db8::1"))
	m.Learn(cat(rows(ip4(1, 2, 3, 4), signer(1), 5, 2), rows(v6, signer(2), 5, 3)))
	m.Observe(rows(ip4(1, 2, 3, 4), signer(1), 1, 1)[0])
	return encode(t, m)
}

// resum recomputes the checksum of a modified encoding.
func resum(b []byte) []byte {
	n := len(b) - sumSize
	binary.LittleEndian.PutUint64(b[n:], xxhash.Sum64(b[:n]))
	return b
}

func loadBytes(t *testing.T, data []byte) (*IPSigner, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if (m == nil) == (err == nil) {
		t.Fatalf("Load returned model %v and error %v", m != nil, err)
	}
	return m, err
}

func TestLoadRejects(t *testing.T) {
	good := small(t)
	if _, err := loadBytes(t, good); err != nil {
		t.Fatalf("good file: %v", err)
	}
	// Entries sorted by key: the IPv4 entry (::ffff:1.2.3.4) comes before
	// the IPv6 one (2001:db8::/64).
	const ipOff, sgOff = headerSize, headerSize + 2*ipRecSize
	f := func(name string, data []byte, want error, text string) {
		t.Helper()
		_, err := loadBytes(t, data)
		if !errors.Is(err, want) || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: Load error %v, want %v containing %q", name, err, want, text)
		}
	}
	mod := func(change func(b []byte) []byte) []byte {
		return resum(change(bytes.Clone(good)))
	}
	putU64 := func(off int, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint64(b[off:], v); return b }
	}
	f("empty", nil, ErrTruncated, "0 bytes")
	f("magic prefix", []byte("QOS"), ErrTruncated, "shorter than the magic")
	f("foreign text", []byte("ip 1.2.3.4 0.5\n"), ErrForeign, "magic")
	f("foreign short", []byte("x"), ErrForeign, "no \"QOSMODEL\" magic")
	f("PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), ErrForeign, "magic")
	f("zeros", make([]byte, 4096), ErrForeign, "magic")
	f("future version", mod(func(b []byte) []byte { b[8] = FormatVersion + 1; return b }), ErrVersion, "newer")
	f("version 0", mod(func(b []byte) []byte { b[8] = 0; return b }), ErrVersion, "version 0")
	f("reserved", mod(func(b []byte) []byte { b[12] = 1; return b }), ErrCorrupt, "reserved")
	f("checksum", func() []byte { b := bytes.Clone(good); b[ipOff+3] ^= 0x10; return b }(), ErrChecksum, "checksum")
	f("trailing byte", append(bytes.Clone(good), 0), ErrCorrupt, "trailing")
	f("huge count", mod(putU64(136, 1<<40)), ErrCorrupt, "exceed the limits")
	f("huge penalty-only count", mod(putU64(144, 1<<40)), ErrCorrupt, "exceed the limits")
	f("min score 0", mod(putU64(80, 0)), ErrCorrupt, "min score")
	f("score below the min score", mod(putU64(ipOff+16, math.Float64bits(1e-31))), ErrCorrupt, "below the min score")
	f("bad params", mod(putU64(32, math.Float64bits(2))), ErrCorrupt, "alpha")
	f("batch below min observations", mod(putU64(16, 1)), ErrCorrupt, "min observations")
	f("pending fills the batch", mod(func(b []byte) []byte {
		putU64(16, 1)(b) // batch size 1, min observations 1: valid, but 1 pending
		return putU64(24, 1)(b)
	}), ErrCorrupt, "do not fit")
	f("NaN score", mod(putU64(ipOff+16, math.Float64bits(math.NaN()))), ErrCorrupt, "score NaN")
	f("negative score", mod(putU64(ipOff+16, math.Float64bits(-1))), ErrCorrupt, "score -1")
	f("-0 score", mod(putU64(ipOff+16, math.Float64bits(math.Copysign(0, -1)))), ErrCorrupt, "score")
	f("+Inf score", mod(putU64(sgOff+32, math.Float64bits(math.Inf(1)))), ErrCorrupt, "score +Inf")
	f("non-canonical IPv6", mod(func(b []byte) []byte { b[ipOff+ipRecSize+15] = 1; return b }), ErrCorrupt, "canonical")
	f("duplicate IP", mod(func(b []byte) []byte {
		copy(b[ipOff+ipRecSize:ipOff+2*ipRecSize], b[ipOff:ipOff+ipRecSize])
		return b
	}), ErrCorrupt, "strictly ascending")
	f("unsorted signers", mod(func(b []byte) []byte {
		var tmp [signerRecSize]byte
		copy(tmp[:], b[sgOff:])
		copy(b[sgOff:sgOff+signerRecSize], b[sgOff+signerRecSize:sgOff+2*signerRecSize])
		copy(b[sgOff+signerRecSize:], tmp[:])
		return b
	}), ErrCorrupt, "strictly ascending")
	pendOff := sgOff + 2*signerRecSize
	f("non-canonical pending IP", mod(func(b []byte) []byte { b[pendOff+5] = 1; return b }), ErrCorrupt, "pending")

	// Every strict prefix is truncated; every single-byte change is refused.
	for n := range len(good) {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		if m, err := Decode(b); err == nil || m != nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
}

// encodeV1 encodes s in format version 1 (no MinScore, no penalty-only
// section: its penalty-only IPs are written as learned with score
// scores[ip], or 0), as a build before version 2 wrote it.
func encodeV1(s Snapshot, scores map[IP]float64) []byte {
	le := binary.LittleEndian
	ips := slices.Clone(s.IPs)
	for _, e := range s.Penalized {
		ips = append(ips, IPScore{e.IP, scores[e.IP]})
	}
	slices.SortFunc(ips, func(a, b IPScore) int { return a.IP.compare(b.IP) })
	b := []byte(fileMagic)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, 0)
	p := s.Params
	for _, v := range []uint64{
		uint64(p.BatchSize), uint64(p.MinObservations),
		math.Float64bits(p.Alpha), math.Float64bits(p.ExecutedMultiplier),
		p.AssumedExecNanos, math.Float64bits(p.PenaltyFactor),
		uint64(p.MaxIPs), uint64(p.MaxSigners),
	} {
		b = le.AppendUint64(b, v)
	}
	st := s.Stats
	for _, v := range []uint64{
		st.Observations, st.Learns, st.Penalties, st.PenalizedNew, st.PrunedIPs, st.PrunedSigners,
		uint64(len(ips)), uint64(len(s.Signers)), uint64(len(s.Pending)),
	} {
		b = le.AppendUint64(b, v)
	}
	for _, e := range ips {
		b = append(b, e.IP[:]...)
		b = le.AppendUint64(b, math.Float64bits(e.Score))
	}
	for _, e := range s.Signers {
		b = append(b, e.Signer[:]...)
		b = le.AppendUint64(b, math.Float64bits(e.Score))
	}
	for _, o := range s.Pending {
		b = append(b, o.IP[:]...)
		b = append(b, o.Signer[:]...)
		b = le.AppendUint64(b, o.Fee)
		b = le.AppendUint64(b, o.ExecNanos)
	}
	return le.AppendUint64(b, xxhash.Sum64(b))
}

// TestLoadVersion1: a version 1 file loads with every IP learned, the
// default MinScore, scores below it raised to it, and saves as version 2.
func TestLoadVersion1(t *testing.T) {
	m := New(DefaultParams())
	a, b, c, pen := ip4(1, 1, 1, 1), ip4(1, 1, 1, 2), ip4(1, 1, 1, 3), ip4(1, 1, 1, 4)
	m.Learn(cat(rows(a, signer(1), 5, 2), rows(b, signer(2), 5, 4), rows(c, signer(3), 5, 9)))
	m.Penalize(pen)
	m.Observe(rows(a, signer(1), 1, 1)[0])
	old := encodeV1(m.Snapshot(), map[IP]float64{pen: 0}) // v1 scores could be 0
	l, err := loadBytes(t, old)
	if err != nil {
		t.Fatalf("version 1 file: %v", err)
	}
	st := l.Stats()
	if st.IPs != 4 || st.PenalizedIPs != 0 || st.Signers != 3 || st.Pending != 1 || l.Params() != DefaultParams() {
		t.Fatalf("loaded version 1: %+v, params %+v", st, l.Params())
	}
	wantScore(t, "zero score raised to the floor", ipScore(t, l, pen), 1e-30, 1e-30)
	wantScore(t, "median of {1e-30, 2, 4, 9}", st.MedianIP, 3, 3)
	checkTable(t, "v1 ips", l.ips)
	again := encode(t, l)
	if binary.LittleEndian.Uint32(again[8:]) != FormatVersion {
		t.Fatal("a loaded version 1 model does not save as the current version")
	}
	if l2, err := Decode(again); err != nil || Diff(l, l2, 0) != nil {
		t.Fatalf("re-encoded version 1 model: %v %v", err, Diff(l, l2, 0))
	}
}

// TestLoadRejectsPenaltyOnly: the penalty-only section's checks.
func TestLoadRejectsPenaltyOnly(t *testing.T) {
	m := New(DefaultParams())
	m.Learn(cat(rows(ip4(1, 2, 3, 4), signer(1), 5, 2), rows(ip4(1, 2, 3, 6), signer(2), 5, 3)))
	m.Penalize(ip4(1, 2, 3, 5))
	m.Penalize(ip4(1, 2, 3, 7))
	good := encode(t, m)
	if l, err := loadBytes(t, good); err != nil || Diff(m, l, 0) != nil {
		t.Fatalf("good file: %v", err)
	}
	const penOff = headerSize + 2*ipRecSize
	f := func(name string, change func(b []byte), text string) {
		t.Helper()
		b := bytes.Clone(good)
		change(b)
		_, err := loadBytes(t, resum(b))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: Load error %v, want ErrCorrupt containing %q", name, err, text)
		}
	}
	mult := func(v float64) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[penOff+16:], math.Float64bits(v)) }
	}
	f("multiplier above 1", mult(1.5), "multiplier 1.5")
	f("NaN multiplier", mult(math.NaN()), "multiplier NaN")
	f("negative multiplier", mult(-0.5), "multiplier -0.5")
	f("learned and penalty-only", func(b []byte) { copy(b[penOff:penOff+16], b[headerSize:headerSize+16]) },
		"both learned and penalty-only")
	f("unsorted", func(b []byte) {
		var tmp [penRecSize]byte
		copy(tmp[:], b[penOff:])
		copy(b[penOff:penOff+penRecSize], b[penOff+penRecSize:penOff+2*penRecSize])
		copy(b[penOff+penRecSize:], tmp[:])
	}, "strictly ascending")
	f("non-canonical", func(b []byte) { b[penOff] = 0x20; b[penOff+15] = 1 }, "canonical")
}
