package packmode

import (
	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/pack"
)

// forwarded reports whether t came FORWARDED by a staked node. Its source
// address is then the forwarder's, which vouches for nothing it passes on
// (a staked node forwards what its clients send, honest or not): the
// model keys such a transaction by its fee payer (metastore.ForwardedKey)
// for both its score and what its result teaches, so the forwarder's
// address is neither charged for a spammer it forwarded nor credited for
// an honest sender, and the senders behind one forwarder do not share a
// reputation. An unparsable forwarded transaction names no payer and
// penalises nobody.
func forwarded(t *txRec) bool {
	return t.flags&bindings.TpuForwarded != 0
}

// modelKey is the model's IP key for t: its source address, or for a
// forwarded transaction its payer's key.
func modelKey(t *txRec) model.IP {
	if forwarded(t) {
		return metastore.ForwardedKey(t.payer)
	}
	return model.IPv6(t.ip)
}

// learn joins one result with what admission recorded of t: the
// metastore row (when rows are written) and, under the model policy, the
// model's observation. The observation is built from the row
// (metastore.Row.PackObservation: pack.Judge, then pack.ModelObservation),
// the very function replay applies to the stored row, so the daemon's
// model and a replayed one cannot drift apart. It returns the verdict.
func (l *Loop) learn(t *txRec, r pack.ExecResult) pack.Verdict {
	v := pack.Judge(r, t.fee, t.cost)
	ch := metastore.PackChannel
	if forwarded(t) {
		ch = metastore.PackForwardedChannel // keyed by its payer: see forwarded
	}
	row := metastore.Row{
		ObservedAt: l.wall0 + l.now,
		Seq:        l.st.Rows + l.st.RowsDropped,
		Kind:       metastore.RowPackResult,
		Channel:    ch,
		IP:         t.ip,
		Signer:     t.payer,
		Fee:        t.fee,
		CUs:        t.cost, // the estimate Judge falls back on
		CUPrice:    t.cuPrice,
		ExecNanos:  0,
		Scheduled:  v.Blame == pack.Credit,
		Value:      v.Value,
		Score:      t.score,
		Seed:       l.cfg.Seed,

		Slot:            r.Slot,
		Reason:          uint8(r.Reason),
		CostUnits:       r.CostUnits,
		FeePayerBalance: r.FeePayerBalance,
	}
	if v.Blame == pack.Credit {
		row.ExecNanos = v.Cost // as in pack.ModelObservation: cost units
	}
	if l.cfg.Policy == PolicyModel {
		if obs, learn := row.PackObservation(); learn {
			l.cfg.Model.Observe(obs)
			l.st.Learned++
		}
	}
	if l.cfg.Rows != nil {
		l.offer(&row)
	}
	return v
}

// offer hands a row to the metastore; Seq numbers every row offered in
// the session's order (written or dropped), as replay applies them.
func (l *Loop) offer(row *metastore.Row) {
	if l.cfg.Rows.Offer(row) {
		l.st.Rows++
	} else {
		l.st.RowsDropped++
	}
}
