package metastore

import (
	"math"
	"net/netip"
	"testing"

	"github.com/solqos/qos/admit"
)

func TestRowSpoolRoundTrip(t *testing.T) {
	f := func(r Row) {
		t.Helper()
		var b [RowSize]byte
		putRow(b[:], &r)
		var got Row
		getRow(b[:], &got)
		if got != r && !(math.IsNaN(r.Value) && math.IsNaN(got.Value)) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
	f(Row{})
	f(testRow(1))
	f(testRow(5))
	max := testRow(2)
	max.Fee, max.CUs, max.CUPrice, max.ExecNanos, max.Hash, max.Seed, max.Seq = ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)
	max.ObservedAt = math.MinInt64
	max.Value = math.Inf(-1)
	max.Kind = RowUnparsable
	f(max)
	f(PenaltyRow(RowSigverifyFailed, 9, 1000, SigverifyChannel, testRow(3).IP, 42))
}

// TestSpoolVersion1RowsAreCompleted: version 1 wrote the kind byte as
// reserved zero, so its rows read as completed transactions.
func TestSpoolVersion1RowsAreCompleted(t *testing.T) {
	r := testRow(4)
	var b [RowSize]byte
	putRow(b[:], &r)
	clear(b[130:]) // what version 1 wrote there
	r.Kind = RowSigverifyFailed
	getRow(b[:], &r)
	if r.Kind != RowCompleted {
		t.Fatalf("version 1 row read as kind %v", r.Kind)
	}
	for k := RowCompleted; k < numRowKinds; k++ {
		if !k.Valid() || k.String() == "unknown" || k.Penalty() != (k != RowCompleted) {
			t.Fatalf("kind %d: valid %v, name %s", k, k.Valid(), k)
		}
	}
	if numRowKinds.Valid() || numRowKinds.String() != "unknown" {
		t.Fatal("an unknown kind is valid")
	}
}

func TestCompletedRow(t *testing.T) {
	p := admit.Partial{ArrivedAt: 5, Channel: 2, Fee: 10, CUs: 20, CUPrice: 30, Score: 1.5}
	p.IP = netip.MustParseAddr("1.2.3.4").As16()
	p.Signer[3] = 9
	r := CompletedRow(&p, 77 /*hash*/, 42 /*seed*/, 1000 /*observedAt*/, 0 /*execNanos*/)
	want := Row{ObservedAt: 1000, Channel: 2, IP: p.IP, Signer: p.Signer, Fee: 10, CUs: 20, CUPrice: 30, Score: 1.5, Hash: 77, Seed: 42}
	if r != want {
		t.Fatalf("CompletedRow = %+v", r)
	}
	if r.Addr() != netip.MustParseAddr("1.2.3.4") {
		t.Fatalf("Addr = %v", r.Addr())
	}
	r = CompletedRow(&p, 77 /*hash*/, 42 /*seed*/, 1000 /*observedAt*/, 123 /*execNanos*/)
	if !r.Scheduled || r.ExecNanos != 123 {
		t.Fatal("executed row not scheduled")
	}
}
