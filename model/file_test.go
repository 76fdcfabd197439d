package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func encode(tb testing.TB, m *IPSigner) []byte {
	tb.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := filled(t, DefaultParams(), 5, 30_000)
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
	for _, s := range sequence(6, 2000) {
		if a, b := m.Forward(s.o.IP, s.o.Signer), l.Forward(s.o.IP, s.o.Signer); a != b {
			t.Fatalf("forward %v vs %v after loading", a, b)
		}
	}
	data, _ := os.ReadFile(path)
	if !bytes.Equal(data, encode(t, l)) {
		t.Fatal("re-encoding the loaded model changes the bytes")
	}
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.bin")
	a := New(DefaultParams())
	a.Observe(tx(ip4(1, 2, 3, 4), signer(1), 10, true))
	for range 2 { // create, then replace
		if err := a.Save(path); err != nil {
			t.Fatal(err)
		}
		a.Penalize(ip4(1, 2, 3, 4), 10)
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

// small returns the encoding of a small model: IPv4 and IPv6 records in
// each IP table, two signers.
func small(t *testing.T) []byte {
	t.Helper()
	m := New(DefaultParams())
	v6 := IPOf(netip.MustParseAddr("2001:db8::1"))
	m.Observe(tx(ip4(1, 2, 3, 4), signer(1), 10, true))
	m.Observe(tx(v6, signer(2), 20, false))
	m.Penalize(ip4(1, 2, 3, 4), 0)
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
	// Records sorted by key: in each IP table the IPv4 record
	// (::ffff:…) comes before the IPv6 one (2001:db8::…).
	const ipOff = headerSize
	sgOff := headerSize + 6*ipRecSize
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
	f("PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), ErrForeign, "magic")
	f("zeros", make([]byte, 4096), ErrForeign, "magic")
	f("future version", mod(func(b []byte) []byte { b[8] = FormatVersion + 1; return b }), ErrVersion, "newer")
	f("version 0", mod(func(b []byte) []byte { b[8] = 0; return b }), ErrVersion, "version 0")
	for _, v := range []byte{1, 2} {
		f("old version", mod(func(b []byte) []byte { b[8] = v; return b }), ErrVersion, "move the file away")
	}
	f("reserved", mod(func(b []byte) []byte { b[12] = 1; return b }), ErrCorrupt, "reserved")
	f("checksum", func() []byte { b := bytes.Clone(good); b[ipOff+3] ^= 0x10; return b }(), ErrChecksum, "checksum")
	f("trailing byte", append(bytes.Clone(good), 0), ErrCorrupt, "trailing")
	f("huge count", mod(putU64(184, 1<<40)), ErrCorrupt, "exceed the limits")
	f("count beyond max IPs", mod(func(b []byte) []byte { return putU64(48, 1)(b) }), ErrCorrupt, "do not fit")
	f("min score 0", mod(putU64(72, 0)), ErrCorrupt, "min score")
	f("window 0", mod(putU64(16, 0)), ErrCorrupt, "window")
	f("NaN claim", mod(putU64(ipOff+16, math.Float64bits(math.NaN()))), ErrCorrupt, "claim NaN")
	f("negative paid", mod(putU64(ipOff+24, math.Float64bits(-1))), ErrCorrupt, "paid -1")
	f("-0 claim", mod(putU64(ipOff+16, math.Float64bits(math.Copysign(0, -1)))), ErrCorrupt, "claim")
	f("n beyond window", mod(putU64(ipOff+40, math.Float64bits(1e6))), ErrCorrupt, "n 1e+06")
	f("stamp beyond events", mod(putU64(ipOff+48, 1<<40)), ErrCorrupt, "stamp")
	f("+Inf exp", mod(putU64(sgOff+48, math.Float64bits(math.Inf(1)))), ErrCorrupt, "exp +Inf")
	f("newcomer NaN", mod(putU64(152, math.Float64bits(math.NaN()))), ErrCorrupt, "newcomer")
	f("unpaid floor 2", mod(putU64(80, math.Float64bits(2))), ErrCorrupt, "unpaid floor")
	f("fail tolerance 0.5", mod(putU64(88, math.Float64bits(0.5))), ErrCorrupt, "fail tolerance")
	f("NaN fail", mod(putU64(ipOff+32, math.Float64bits(math.NaN()))), ErrCorrupt, "fail NaN")
	f("non-canonical IPv6", mod(func(b []byte) []byte { b[ipOff+ipRecSize+15] = 1; return b }), ErrCorrupt, "canonical")
	f("near prefix with host bits", mod(func(b []byte) []byte { b[ipOff+2*ipRecSize+15] = 4; return b }), ErrCorrupt, "near prefix")
	f("duplicate IP", mod(func(b []byte) []byte {
		copy(b[ipOff+ipRecSize:ipOff+2*ipRecSize], b[ipOff:ipOff+ipRecSize])
		return b
	}), ErrCorrupt, "strictly ascending")
	f("duplicate stamp", mod(func(b []byte) []byte {
		copy(b[sgOff+signerRecSize+64:sgOff+signerRecSize+72], b[sgOff+64:sgOff+72])
		return b
	}), ErrCorrupt, "stamp")

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

// TestLoadOldVersionFile: a version 2 file, as the model before pay rates
// wrote it (testdata), is refused with ErrVersion and a message that
// names the way out.
func TestLoadOldVersionFile(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "model-v2.bin"))
	if m != nil || !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "qos-cli replay") {
		t.Fatalf("Load(version 2 file) = %v, %v", m, err)
	}
}

// v3 rewrites a version 4 encoding as the version 3 file of the same
// model (no inclusion bar: the 24 bytes at 216 cut out).
func v3(tb testing.TB, b []byte) []byte {
	tb.Helper()
	out := append([]byte(nil), b[:headerSizeV3]...)
	out = append(out, b[headerSize:len(b)-sumSize]...)
	binary.LittleEndian.PutUint32(out[8:], 3)
	return binary.LittleEndian.AppendUint64(out, xxhash.Sum64(out))
}

// TestLoadVersion3: a version 3 file (before the inclusion bar) loads
// with the same records, the bar's parameters at their defaults and no
// bar learnt; the next paid outcome sets it.
func TestLoadVersion3(t *testing.T) {
	p := DefaultParams()
	p.BarQuantile = 0.2
	m := filled(t, p, 5, 5_000)
	if m.Stats().Bar == 0 {
		t.Fatal("no bar learnt from the sequence")
	}
	path := filepath.Join(t.TempDir(), "model-v3.bin")
	if err := os.WriteFile(path, v3(t, encode(t, m)), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultParams()
	if got := l.Params(); got.BarQuantile != d.BarQuantile || got.BarStep != d.BarStep {
		t.Fatalf("bar params of a version 3 file = %v, %v, want the defaults", got.BarQuantile, got.BarStep)
	}
	if b := l.Stats().Bar; b != 0 {
		t.Fatalf("bar of a version 3 file = %v, want 0", b)
	}
	want := m.Snapshot()
	want.Params.BarQuantile, want.Bar = d.BarQuantile, 0
	if diff := Diff(fromSnapshot(want), l, 0); diff != nil {
		t.Fatalf("version 3 file loaded differently: %v", diff)
	}
	l.Observe(tx(ip4(10, 0, 0, 1), signer(1), 777, true))
	if b := l.Stats().Bar; b != 777 {
		t.Fatalf("bar after the first paid claim 777 = %v", b)
	}
	// A truncated version 3 header is still reported as such.
	if _, err := Decode(v3(t, encode(t, m))[:200]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated version 3 file: %v", err)
	}
}
