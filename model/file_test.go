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
	f("future version", mod(func(b []byte) []byte { b[8] = 2; return b }), ErrVersion, "newer")
	f("version 0", mod(func(b []byte) []byte { b[8] = 0; return b }), ErrVersion, "version 0")
	f("reserved", mod(func(b []byte) []byte { b[12] = 1; return b }), ErrCorrupt, "reserved")
	f("checksum", func() []byte { b := bytes.Clone(good); b[ipOff+3] ^= 0x10; return b }(), ErrChecksum, "checksum")
	f("trailing byte", append(bytes.Clone(good), 0), ErrCorrupt, "trailing")
	f("huge count", mod(putU64(128, 1<<40)), ErrCorrupt, "exceed the limits")
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
