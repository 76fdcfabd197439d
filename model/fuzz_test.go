package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// FuzzLoad feeds arbitrary bytes to Decode, the parser behind Load. Each
// input is tried twice: as given (almost always stopped by the checksum)
// and with its last 8 bytes replaced by the right checksum, which lets
// the fuzzer reach the header, entry and parameter checks. Properties: no
// panic; a model or an error, never both; errors are one of the sentinel
// kinds; an accepted input of the current version re-encodes to exactly
// the same bytes (the encoding is canonical), one of version 1 to bytes
// that decode and re-encode unchanged; its tables are internally
// consistent.
func FuzzLoad(f *testing.F) {
	m := New(DefaultParams())
	v6 := IPOf(netip.MustParseAddr("2001:db8::1"))
	m.Learn(cat(rows(ip4(1, 2, 3, 4), signer(1), 5, 2), rows(v6, signer(2), 5, 3)))
	m.Penalize(ip4(5, 6, 7, 8))
	m.Penalize(ip4(1, 2, 3, 4))
	m.Observe(rows(ip4(1, 2, 3, 4), signer(1), 1, 1)[0])
	good, _ := m.AppendBinary(nil)
	empty, _ := New(DefaultParams()).AppendBinary(nil)

	f.Add(good)                         // a valid model: 2 learned IPs, 1 penalty-only, 2 signers, 1 pending
	f.Add(empty)                        // a valid empty model
	f.Add([]byte{})                     // nothing
	f.Add([]byte("QOSMODEL"))           // magic only
	f.Add(good[:headerSize])            // header without entries or checksum
	f.Add(good[:len(good)-1])           // one byte short
	f.Add(append(bytes.Clone(good), 0)) // one byte long
	f.Add([]byte("ip 1.2.3.4 0.5\n"))   // the reference's text format
	future := bytes.Clone(empty)
	future[8] = FormatVersion + 1
	f.Add(future)                      // a newer format version
	f.Add(encodeV1(m.Snapshot(), nil)) // version 1: the penalty-only IP becomes learned

	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
		if len(data) >= sumSize {
			fixed := bytes.Clone(data)
			n := len(fixed) - sumSize
			binary.LittleEndian.PutUint64(fixed[n:], xxhash.Sum64(fixed[:n]))
			check(t, fixed)
		}
	})
}

func check(t *testing.T, data []byte) {
	m, err := Decode(data)
	if (m == nil) == (err == nil) {
		t.Fatalf("Decode returned model %v and error %v", m != nil, err)
	}
	if err != nil {
		for _, kind := range []error{ErrForeign, ErrVersion, ErrTruncated, ErrChecksum, ErrCorrupt} {
			if errors.Is(err, kind) {
				return
			}
		}
		t.Fatalf("error of no known kind: %v", err)
	}
	again, _ := m.AppendBinary(nil)
	if binary.LittleEndian.Uint32(data[8:]) == 1 {
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("version 1 input re-encodes to bytes Decode refuses: %v", err)
		}
		data, _ = m2.AppendBinary(nil)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("accepted input re-encodes differently")
	}
	checkTable(t, "ips", m.ips)
	checkTable(t, "signers", m.signers)
	// The model must also be usable.
	m.Forward(ip4(1, 2, 3, 4), signer(1))
	m.Penalize(ip4(9, 9, 9, 9))
}
