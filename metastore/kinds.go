package metastore

// KindCounts counts rows by kind, indexed by RowKind: what a replay read.
type KindCounts [numRowKinds]int64

// count adds r (a kind this binary does not know is not counted; decoding
// refuses such rows anyway).
func (k *KindCounts) count(r *Row) {
	if r.Kind.Valid() {
		k[r.Kind]++
	}
}

// Total is the rows of every kind.
func (k *KindCounts) Total() int64 {
	var n int64
	for _, v := range k {
		n += v
	}
	return n
}

// Transactions is the rows the model observes as transactions: sidecar
// mode's completed transactions and pack mode's results.
func (k *KindCounts) Transactions() int64 { return k[RowCompleted] + k[RowPackResult] }

// Penalties is the penalty rows (failed sigverify, unparsable packets).
func (k *KindCounts) Penalties() int64 { return k[RowSigverifyFailed] + k[RowUnparsable] }
