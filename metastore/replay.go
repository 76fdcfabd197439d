package metastore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// Observation is what the model learns from a completed row, built exactly
// as the daemon builds it when the scheduler's result arrives.
func (r *Row) Observation() model.Observation {
	return model.Observation{
		IP:        r.Key(),
		Signer:    r.Signer,
		Fee:       r.Fee,
		CUs:       r.CUs,
		ExecNanos: r.ExecNanos,
	}
}

// Claim is the fee per CU a penalty row's packet claimed (fee / max(CUs,
// 1)), or 0 when unknown (an unparsable packet, or a row written before
// penalties carried it): what the daemon passed to Penalize.
func (r *Row) Claim() float64 {
	if r.Fee == 0 {
		return 0
	}
	return float64(r.Fee) / float64(max(r.CUs, 1))
}

// Key is the model's key for the row's IP (IPv6 as its /64), the one the
// daemon observed or penalised.
func (r *Row) Key() model.IP { return model.IPOf(r.Addr()) }

// Apply gives the row to m as the daemon did: a completed row is observed,
// a penalty row penalises its IP, a pack-mode result goes through the
// same mapping as in the pack loop (PackObservation). Rows of a kind this
// binary does not know change nothing (decoding refuses them anyway).
func (r *Row) Apply(m *model.IPSigner) {
	switch r.Kind {
	case RowCompleted:
		m.Observe(r.Observation())
	case RowSigverifyFailed, RowUnparsable:
		m.Penalize(r.Key(), r.Claim())
	case RowPackResult:
		if obs, learn := r.PackObservation(); learn {
			m.Observe(obs)
		}
	}
}

// PackObservation is what the pack loop's model learnt from a
// RowPackResult: pack.Judge of the reported result against the fee and
// estimated cost (CUs), mapped by pack.ModelObservation; learn is false
// for a reason that blames nobody.
func (r *Row) PackObservation() (model.Observation, bool) {
	v := pack.Judge(pack.ExecResult{Slot: r.Slot, Reason: bindings.NotIncludedReason(r.Reason), CostUnits: r.CostUnits,
		FeePayerBalance: r.FeePayerBalance}, r.Fee, r.CUs)
	return pack.ModelObservation(r.Key(), r.Signer, r.Fee, v)
}

// Progress reports how far a replay got.
type Progress struct {
	Rows    int64         // rows read so far, of every kind
	Total   int64         // rows in the range (counted before starting)
	At      time.Time     // observed_at of the last row read
	Elapsed time.Duration // since the replay started
	Done    bool          // the last report
}

// RowsPerSecond is the replay's average rate so far.
func (p Progress) RowsPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Rows) / p.Elapsed.Seconds()
}

// ETA estimates the time left at the average rate so far.
func (p Progress) ETA() time.Duration {
	rate := p.RowsPerSecond()
	if rate == 0 || p.Total <= p.Rows {
		return 0
	}
	return time.Duration(float64(p.Total-p.Rows) / rate * float64(time.Second))
}

// ReplayOptions select the rows and the model to rebuild.
type ReplayOptions struct {
	From, To time.Time    // from ≤ observed_at < to; zero leaves a side open
	Params   model.Params // the model's constants
	PageRows int          // rows per keyset page (default 8192)
	// Progress, when set, is called after every page and once at the end.
	Progress func(Progress)
	// Kinds, when set, counts the rows read by kind.
	Kinds *KindCounts
}

// Replay rebuilds the model from the rows in the range, in the order the
// daemon applied them: Observe once per completed row (so learning happens
// on the same batches), Penalize once per penalty row. Memory does not
// grow with the number of rows. It returns the rows read, of every kind.
func Replay(ctx context.Context, conn *pgx.Conn, opt ReplayOptions) (*model.IPSigner, int64, error) {
	if err := opt.Params.Validate(); err != nil {
		return nil, 0, err
	}
	m := model.New(opt.Params)
	n, err := scan(ctx, conn, opt.From, opt.To, opt.PageRows, -1, opt.Progress, func(r *Row) {
		if opt.Kinds != nil {
			opt.Kinds.count(r)
		}
		r.Apply(m)
	})
	if err != nil {
		return nil, n, err
	}
	return m, n, nil
}

// scan streams the range through fn, reporting progress per page. total is
// the range's row count for the progress reports (-1: count it first).
func scan(ctx context.Context, conn *pgx.Conn, from, to time.Time, page int, total int64, progress func(Progress), fn func(*Row)) (int64, error) {
	start := time.Now()
	var p Progress
	if progress != nil && total < 0 {
		var err error
		if total, _, _, err = Span(ctx, conn, from, to); err != nil {
			return 0, err
		}
	}
	p.Total = total
	rd := NewReader(conn, from, to, page)
	for {
		rows, err := rd.Next(ctx)
		if err != nil {
			return rd.Read(), err
		}
		for i := range rows {
			fn(&rows[i])
		}
		if progress != nil {
			p.Rows = rd.Read()
			p.Elapsed = time.Since(start)
			if len(rows) > 0 {
				p.At = time.Unix(0, rows[len(rows)-1].ObservedAt).UTC()
			}
			p.Done = len(rows) == 0
			progress(p)
		}
		if len(rows) == 0 {
			return rd.Read(), nil
		}
		if err := ctx.Err(); err != nil {
			return rd.Read(), err
		}
	}
}

// DefaultShares are the shares of test transactions a backtest admits.
var DefaultShares = []float64{0.01, 0.05, 0.10, 0.25}

// BacktestOptions configure a backtest: train on the first part of the
// range, then rank the rest.
type BacktestOptions struct {
	From, To time.Time
	// Grid lists the model parameter sets to evaluate side by side (one
	// pass over the rows feeds them all). At least one.
	Grid []model.Params
	// TrainFraction is the share of rows (in time order) used only to
	// train (default 0.7).
	TrainFraction float64
	// Shares are the shares of test rows admitted (default DefaultShares).
	Shares []float64
	// Frozen stops learning at the end of training. By default the models
	// keep learning during the test part, scoring each row before
	// observing it, as the daemon does.
	Frozen   bool
	PageRows int
	Progress func(Progress)
	// Kinds, when set, counts the rows read by kind.
	Kinds *KindCounts
}

// ShareResult is the value captured when admitting the top K test rows.
type ShareResult struct {
	Share   float64 `json:"budget"`   // share of test rows admitted
	K       int     `json:"k"`        // rows admitted
	Model   float64 `json:"model"`    // fee of scheduled rows among the top K by model × fee/CU
	FeeOnly float64 `json:"fee_only"` // … by fee/CU alone
	Oracle  float64 `json:"oracle"`   // … by the fee of scheduled rows itself (the best possible)
}

// ModelShare is the model's capture as a share of the oracle's (1 when the
// oracle captured nothing).
func (b ShareResult) ModelShare() float64 { return share(b.Model, b.Oracle) }

// FeeShare is fee-only ranking's capture as a share of the oracle's.
func (b ShareResult) FeeShare() float64 { return share(b.FeeOnly, b.Oracle) }

func share(x, oracle float64) float64 {
	if oracle == 0 {
		return 1
	}
	return x / oracle
}

// BacktestResult is one parameter set's backtest.
type BacktestResult struct {
	Params    model.Params `json:"params"`
	TrainRows int64        `json:"train_rows"`
	TestRows  int64        `json:"test_rows"`
	// PenaltyRows counts the penalty rows read (applied in their place;
	// with Frozen, not after training).
	PenaltyRows int64         `json:"feedback_rows"`
	Shares      []ShareResult `json:"budgets"`
	// Model is the model after the whole range (or after training when
	// Frozen).
	Model *model.IPSigner `json:"-"`
}

// Merit is the mean over budgets of the model's share of the oracle: what
// a sweep maximises.
func (e *BacktestResult) Merit() float64 {
	if len(e.Shares) == 0 {
		return 0
	}
	var s float64
	for _, b := range e.Shares {
		s += b.ModelShare()
	}
	return s / float64(len(e.Shares))
}

// Backtest replays the range once, feeding every parameter set of the grid,
// and measures how each ranks the test part. The split, the test rows and
// the budgets count transactions only: completed rows and pack-mode results
// (a result that blames nobody is ranked but teaches nothing, as in the
// pack loop); penalty rows update every model in their place,
// and with Frozen not after training. Besides the constant model
// state, it keeps three float64 per test row plus one per row and grid
// entry.
func Backtest(ctx context.Context, conn *pgx.Conn, opt BacktestOptions) ([]BacktestResult, error) {
	if len(opt.Grid) == 0 {
		return nil, errors.New("evaluate: no model parameters")
	}
	frac := opt.TrainFraction
	if frac == 0 {
		frac = 0.7
	}
	if !(frac > 0 && frac < 1) {
		return nil, fmt.Errorf("evaluate: train fraction %v is not between 0 and 1", frac)
	}
	budgets := slices.Sorted(slices.Values(opt.Shares))
	if len(budgets) == 0 {
		budgets = DefaultShares
	}
	for _, b := range budgets {
		if !(b > 0 && b <= 1) {
			return nil, fmt.Errorf("evaluate: budget %v is not in (0, 1]", b)
		}
	}
	models := make([]*model.IPSigner, len(opt.Grid))
	for i, p := range opt.Grid {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("evaluate: parameter set %d: %w", i, err)
		}
		models[i] = model.New(p)
	}
	total, completed, err := Count(ctx, conn, opt.From, opt.To)
	if err != nil {
		return nil, err
	}
	// The split and the ranking are over completed transactions; feedback
	// rows only update the models, in their place in time.
	trainN := int64(float64(completed) * frac)
	testN := completed - trainN
	if trainN == 0 || testN == 0 {
		return nil, fmt.Errorf("evaluate: %d completed transactions in the range: too few to split %.0f%%/%.0f%%", completed, 100*frac, 100*(1-frac))
	}
	feePerCU := make([]float64, 0, testN)
	value := make([]float64, 0, testN)
	scores := make([][]float64, len(models))
	for i := range scores {
		scores[i] = make([]float64, 0, testN)
	}
	var seen, feedback int64 // completed rows, penalty rows
	_, err = scan(ctx, conn, opt.From, opt.To, opt.PageRows, total, opt.Progress, func(r *Row) {
		if opt.Kinds != nil {
			opt.Kinds.count(r)
		}
		if r.Kind.Penalty() || !r.Kind.Valid() {
			feedback++
			if opt.Frozen && seen >= trainN {
				return
			}
			for _, m := range models {
				r.Apply(m)
			}
			return
		}
		seen++
		o, learn := r.Observation(), true
		if r.Kind == RowPackResult {
			o, learn = r.PackObservation()
			o.IP, o.Signer = r.Key(), r.Signer // scored even when it teaches nothing
		}
		if seen > trainN && int64(len(value)) < testN {
			feePerCU = append(feePerCU, score.Score(1 /*model: neutral*/, r.Fee, r.CUs))
			v := 0.0
			if r.Scheduled {
				v = float64(r.Fee)
			}
			value = append(value, v)
			for i, m := range models {
				scores[i] = append(scores[i], score.Score(m.Forward(o.IP, o.Signer), r.Fee, r.CUs))
			}
			if opt.Frozen {
				return
			}
		}
		if !learn {
			return
		}
		for _, m := range models {
			m.Observe(o)
		}
	})
	if err != nil {
		return nil, err
	}
	testN = int64(len(value))
	trainN = min(trainN, seen)
	ks := make([]int, len(budgets))
	for i, b := range budgets {
		ks[i] = max(1, int(math.Ceil(b*float64(testN))))
	}
	order := make([]int32, testN)
	feeOnly := captured(order, feePerCU, value, ks)
	oracle := captured(order, value, value, ks)
	out := make([]BacktestResult, len(models))
	for i, m := range models {
		got := captured(order, scores[i], value, ks)
		res := BacktestResult{Params: opt.Grid[i], TrainRows: trainN, TestRows: testN, PenaltyRows: feedback, Model: m}
		for j, b := range budgets {
			res.Shares = append(res.Shares, ShareResult{Share: b, K: ks[j], Model: got[j], FeeOnly: feeOnly[j], Oracle: oracle[j]})
		}
		out[i] = res
	}
	return out, nil
}

// captured ranks rows by key (highest first; ties keep time order) and
// returns the sum of value over the first k rows for each k of ks.
func captured(order []int32, key, value []float64, ks []int) []float64 {
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		ka, kb := key[a], key[b]
		switch {
		case ka > kb:
			return -1
		case ka < kb:
			return 1
		}
		return 0
	})
	out := make([]float64, len(ks))
	sum := 0.0
	done := 0
	for j, k := range ks {
		for ; done < k && done < len(order); done++ {
			sum += value[order[done]]
		}
		out[j] = sum
	}
	return out
}
