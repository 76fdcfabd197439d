package bindings

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecode decodes every message of every ABI from hostile bytes, follows
// each offset into a hostile "allocator mapping", and checks: no panic; an
// error or a result, never a slice reaching outside the mapping; and
// decode → encode → decode is the identity.
func FuzzDecode(f *testing.F) {
	seed := make([]byte, 200)
	binary.LittleEndian.PutUint64(seed[8:], 64) // plausible offsets
	seed[0] = 2
	f.Add(byte(0), seed)
	f.Add(byte(7), []byte{1, 64, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add(byte(3), make([]byte, 96))
	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		abi := ABI(sel%3) + ABI40
		mem := data // the message bytes double as the mapping
		idx := int(sel >> 2)

		checkSpan := func(b []byte, err error, off uint64, n uint64) {
			t.Helper()
			if err != nil {
				if b != nil {
					t.Fatalf("error %v with a result", err)
				}
				return
			}
			if off > uint64(len(mem)) || n > uint64(len(mem))-off || uint64(len(b)) != n {
				t.Fatalf("span off=%d n=%d accepted in a %d-byte mapping (len %d)", off, n, len(mem), len(b))
			}
		}

		if m, err := DecodeTpuToPack(data); err == nil {
			b, err := m.Transaction.Bytes(mem)
			checkSpan(b, err, m.Transaction.Offset, uint64(m.Transaction.Length))
			roundTrip(t, m, func(b []byte) error { return m.Encode(b) }, func(b []byte) (TpuToPack, error) { return DecodeTpuToPack(b) }, TpuToPackSize)
		} else if len(data) >= TpuToPackSize {
			t.Fatalf("TpuToPack of %d bytes: %v", len(data), err)
		}

		if m, err := DecodePackToWorker(data); err == nil {
			_ = m.Batch.Validate(mem)
			if r, err := m.Batch.At(mem, idx); err == nil {
				b, err := r.Bytes(mem)
				checkSpan(b, err, r.Offset, uint64(r.Length))
			}
			roundTrip(t, m, func(b []byte) error { return m.Encode(b) }, func(b []byte) (PackToWorker, error) { return DecodePackToWorker(b) }, PackToWorkerSize)
		}

		if m, err := DecodePackToCheckWorker(abi, data); err == nil {
			_, _ = m.Batch.At(mem, idx)
			roundTrip(t, m, func(b []byte) error { return m.Encode(abi, b) }, func(b []byte) (PackToCheckWorker, error) { return DecodePackToCheckWorker(abi, b) }, PackToCheckWorkerSize)
		} else if abi != ABI44 && !errors.Is(err, ErrNotInABI) {
			t.Fatalf("PackToCheckWorker in %v: %v", abi, err)
		}

		if m, err := DecodeProgress(abi, data); err == nil {
			roundTrip(t, m, func(b []byte) error { return m.Encode(abi, b) }, func(b []byte) (Progress, error) { return DecodeProgress(abi, b) }, ProgressSize(abi))
		}

		for _, tag := range []ResponseTag{ExecutionResponseTag, CheckResponseTag} {
			m, err := DecodeWorkerToPack(abi, tag, data)
			if err != nil {
				continue
			}
			roundTrip(t, m, func(b []byte) error { return m.Encode(abi, b) }, func(b []byte) (WorkerToPack, error) { return DecodeWorkerToPack(abi, tag, b) }, WorkerToPackSize)
			switch m.Responses.Tag {
			case ExecutionResponseTag:
				if _, err := m.Responses.ExecutionResponse(mem, idx); err == nil {
					sz := uint64(idx+1) * ExecutionResponseSize
					if m.Responses.TransactionResponsesOffset > uint64(len(mem)) || sz > uint64(len(mem))-m.Responses.TransactionResponsesOffset {
						t.Fatal("execution response read outside the mapping")
					}
				}
			case CheckResponseTag:
				if r, err := m.Responses.CheckResponse(abi, mem, idx); err == nil {
					b, err := r.ResolvedPubkeys.Bytes(mem)
					checkSpan(b, err, r.ResolvedPubkeys.Offset, uint64(r.ResolvedPubkeys.NumPubkeys)*PubkeySize)
					_, _ = r.ResolvedPubkeys.Pubkey(mem, idx)
				}
			default:
				t.Fatalf("decoded tag %d", m.Responses.Tag)
			}
		}

		if m, err := DecodeCheckResponse(abi, data); err == nil {
			roundTrip(t, m, func(b []byte) error { return m.Encode(abi, b) }, func(b []byte) (CheckResponse, error) { return DecodeCheckResponse(abi, b) }, CheckResponseSize(abi))
		}
		if m, err := DecodeExecutionResponse(data); err == nil {
			roundTrip(t, m, func(b []byte) error { return m.Encode(b) }, func(b []byte) (ExecutionResponse, error) { return DecodeExecutionResponse(b) }, ExecutionResponseSize)
		}
	})
}

func roundTrip[T comparable](t *testing.T, m T, enc func([]byte) error, dec func([]byte) (T, error), size int) {
	t.Helper()
	b := make([]byte, size)
	if err := enc(b); err != nil {
		t.Fatalf("encode %T: %v", m, err)
	}
	got, err := dec(b)
	if err != nil || got != m {
		t.Fatalf("round trip %T:\n got %+v, %v\nwant %+v", m, got, err, m)
	}
}
