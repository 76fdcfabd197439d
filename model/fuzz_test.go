package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// FuzzLoad feeds arbitrary bytes to Decode, the parser behind Load. Each
// input is tried twice: as given (almost always stopped by the checksum)
// and with its last 8 bytes replaced by the right checksum, which lets
// the fuzzer reach the header, record and parameter checks. Properties: no
// panic; a model or an error, never both; errors are one of the sentinel
// kinds; an accepted input re-encodes to exactly the same bytes (the
// encoding is canonical); the loaded model is usable.
func FuzzLoad(f *testing.F) {
	m := filled(f, smallParams(), 1, 300)
	good, _ := m.AppendBinary(nil)
	empty, _ := New(DefaultParams()).AppendBinary(nil)
	f.Add(good)                         // a valid model with evictions behind it
	f.Add(empty)                        // a valid empty model
	f.Add([]byte{})                     // nothing
	f.Add([]byte("QOSMODEL"))           // magic only
	f.Add(good[:headerSize])            // header without records or checksum
	f.Add(good[:len(good)-1])           // one byte short
	f.Add(append(bytes.Clone(good), 0)) // one byte long
	f.Add([]byte("ip 1.2.3.4 0.5\n"))   // the reference's text format
	future := bytes.Clone(empty)
	future[8] = FormatVersion + 1
	f.Add(future) // a newer format version

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
	if !bytes.Equal(again, data) {
		t.Fatalf("accepted input re-encodes differently")
	}
	if f := m.Forward(ip4(1, 2, 3, 4), signer(1)); !(f > 0 && f <= 1) {
		t.Fatalf("loaded model forwards %v", f)
	}
	m.Penalize(ip4(9, 9, 9, 9), 0)
	m.Observe(tx(ip4(9, 9, 9, 8), signer(9), 1, true))
}
