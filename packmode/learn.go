package packmode

import (
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/pack"
)

// learn joins one result with what admission recorded of t: the
// metastore row (when rows are written) and, under the model policy, the
// model's observation. The observation is built from the row
// (metastore.Row.PackObservation: pack.Judge, then pack.ModelObservation),
// the very function replay applies to the stored row, so the daemon's
// model and a replayed one cannot drift apart. It returns the verdict.
func (l *Loop) learn(t *txRec, r pack.ExecResult) pack.Verdict {
	v := pack.Judge(r, t.fee, t.cost)
	row := metastore.Row{
		ObservedAt: l.wall0 + l.now,
		Seq:        l.st.Rows + l.st.RowsDropped,
		Kind:       metastore.RowPackResult,
		Channel:    metastore.PackChannel,
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
