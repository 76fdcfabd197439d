package packmode

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// Policy says how queued transactions are ranked.
// Policy is the admission package's: how the queue ranks
// transactions (model × fee / cost, fee / cost alone, or arrival order),
// the same three policies and spellings as sidecar mode.
type Policy = admit.Policy

// The policies.
const (
	PolicyModel   = admit.PolicyModel
	PolicyFeeOnly = admit.PolicyFeeOnly
	PolicyFIFO    = admit.PolicyFIFO
)

// ParsePolicy reads a --policy value.
func ParsePolicy(s string) (Policy, error) {
	p, err := admit.ParsePolicy(s)
	if err != nil {
		return 0, fmt.Errorf("--policy: %w", err)
	}
	return p, nil
}

// Config configures the loop. The zero value of a field means its
// default (DefaultConfig).
type Config struct {
	Policy Policy
	// Model is the reputation model (required for PolicyModel; read and
	// trained by the loop goroutine only).
	Model *model.IPSigner
	// Rows, when set, receives a metastore row per execution (and CHECK)
	// result and per unparsable transaction charged to its IP: the
	// model's inputs, in the order the loop applied them, so that replay
	// rebuilds the model (metastore.Row.Apply). Used by the loop
	// goroutine only; Offer never blocks (a full hand-off drops and
	// counts). Rows are written under every policy.
	Rows *metastore.Handoff
	// Seed is the rows' seed column: with (observed_at, seq) their key,
	// so it should differ between runs (the daemon draws one at start).
	Seed uint64
	// QueueCapacity is how many non-vote transactions wait at most; the
	// lowest is evicted (and its payload freed) for a better one.
	QueueCapacity int
	// QueueTTL is how long a transaction may wait from arrival; a
	// deferred one keeps its arrival time.
	QueueTTL time.Duration
	// VoteCapacity is how many votes wait at most (oldest dropped first).
	VoteCapacity int
	// DrainBatch is the most tpu_to_pack messages taken per pass.
	DrainBatch int
	// Depth and BatchSize are pack.Params'.
	Depth     int
	BatchSize int
	// Budget and Cost are the block-cost limits and cost model.
	Budget pack.BudgetParams
	Cost   pack.CostParams
	Fees   score.FeeParams
	// Limits are the admission switches the sidecar has too (account-lock
	// limit, v1 transactions); the zero value is mainnet's.
	Limits score.Limits
	// Check runs every non-vote transaction through the validator's
	// CHECK (status, fee-payer balance, lookup tables) before it may be
	// scheduled for execution.
	Check bool
	// Lookahead is how many blocked transactions in a row a scheduling
	// round skips before it stops.
	Lookahead int
	// StrictBatchLocks keeps conflicting transactions out of one batch
	// (pack.Params.IntraBatchConflicts off), for a validator whose bank
	// lacks relax_intrabatch_account_locks (SIMD-0083) and would fail the
	// later of two conflicting transactions of a batch with
	// ACCOUNT_IN_USE. The zero value batches them together, as Agave's own
	// schedulers do since the feature is active on every cluster (anza-
	// xyz/agave #11989 removed its gate, 2026-04): they then run in order
	// on one worker instead of one batch each.
	StrictBatchLocks bool
	// KeepBatchesInSlot sends EXECUTE batches with max_working_slot = the
	// current slot, so one that reaches its worker after the slot ended
	// comes back MAX_WORKING_SLOT_EXCEEDED and is scheduled again. The
	// zero value lets it run in the next slot of the same leader window
	// (pack.Params.Slack 1), as Agave's worker does when the slot ends
	// under it (it retries on the next bank up to max_working_slot).
	KeepBatchesInSlot bool
	// EndCutoff is how far through the leader window's last slot, in
	// percent, EXECUTE batches stop (pack.Params.EndCutoff): later ones
	// would find no bank (BANK_NOT_AVAILABLE). 0 means the default, 97
	// (about the last two of 64 ticks); above 100, never.
	EndCutoff int
	// MaxWait is the longest the loop holds queued transactions back
	// to fill batches while every worker is busy.
	MaxWait time.Duration
	// ProgressTimeout: a session whose progress_tracker stays silent this
	// long is taken as lost (Agave publishes on every tick, ~6.25 ms).
	ProgressTimeout time.Duration
	// IdleSleep: sleep this long when idle for a while (0: spin and
	// yield, the production setting).
	IdleSleep time.Duration
	// DrainTimeout bounds the wait for in-flight batches at shutdown.
	DrainTimeout time.Duration
	Logger       *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Policy:          PolicyModel,
		QueueCapacity:   score.DefaultQueueCapacity,
		QueueTTL:        score.DefaultQueueTTL,
		VoteCapacity:    4096,
		DrainBatch:      512,
		Depth:           2,
		BatchSize:       pack.MaxBatch,
		Budget:          defaultBudget(),
		Cost:            pack.DefaultCostParams(),
		Fees:            score.DefaultFeeParams(),
		MaxWait:         400 * time.Microsecond,
		Lookahead:       128,
		EndCutoff:       97,
		ProgressTimeout: 2 * time.Second,
		DrainTimeout:    2 * time.Second,
	}
}

// defaultBudget is Agave's limits with room for 65 536 writable accounts
// per block (3 MiB): at tens of thousands of transactions per slot the
// 16 384 of pack's default defer the rest of the block.
func defaultBudget() pack.BudgetParams {
	b := pack.DefaultBudgetParams()
	b.Accounts = 1 << 16
	return b
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.QueueCapacity <= 0 {
		c.QueueCapacity = d.QueueCapacity
	}
	if c.QueueTTL <= 0 {
		c.QueueTTL = d.QueueTTL
	}
	if c.VoteCapacity <= 0 {
		c.VoteCapacity = d.VoteCapacity
	}
	if c.DrainBatch <= 0 {
		c.DrainBatch = d.DrainBatch
	}
	if c.Depth <= 0 {
		c.Depth = d.Depth
	}
	if c.BatchSize <= 0 || c.BatchSize > pack.MaxBatch {
		c.BatchSize = d.BatchSize
	}
	if c.Budget == (pack.BudgetParams{}) {
		c.Budget = d.Budget
	}
	if c.Cost == (pack.CostParams{}) {
		c.Cost = d.Cost
	}
	if c.Fees == (score.FeeParams{}) {
		c.Fees = d.Fees
	}
	if c.EndCutoff <= 0 {
		c.EndCutoff = d.EndCutoff
	}
	if c.Lookahead <= 0 {
		c.Lookahead = d.Lookahead
	}
	if c.MaxWait <= 0 {
		c.MaxWait = d.MaxWait
	}
	if c.ProgressTimeout <= 0 {
		c.ProgressTimeout = d.ProgressTimeout
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = d.DrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Policy > PolicyFIFO {
		return c, fmt.Errorf("pack mode: unknown policy %d", c.Policy)
	}
	if c.Policy == PolicyModel && c.Model == nil {
		return c, fmt.Errorf("pack mode: policy model needs a model")
	}
	return c, nil
}
