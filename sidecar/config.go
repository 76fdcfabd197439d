package sidecar

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
)

// Policy says how packets are ranked in the priority queue (admit.Policy).
type Policy = admit.Policy

// The policies; see admit.
const (
	PolicyModel   = admit.PolicyModel
	PolicyFeeOnly = admit.PolicyFeeOnly
	PolicyFIFO    = admit.PolicyFIFO
)

// ParsePolicy reads a policy's flag spelling.
func ParsePolicy(s string) (Policy, error) { return admit.ParsePolicy(s) }

// Config is everything the loop needs. Flags live in cmd/qos; this package
// takes explicit values.
type Config struct {
	Channels channels.Options
	// Optional lists packet channels that may be absent at start (the
	// relayer's); they are joined when they appear.
	Optional []string

	Seed          uint64 // packet hash seed, published in sch_to_qos metadata
	TargetPPS     uint64
	PacerTick     time.Duration
	PacerBurst    uint64 // 0: 10 ms of TargetPPS
	QueueCapacity int
	QueueTTL      time.Duration
	// RescoreBelow: under the model policy, a packet about to be sent is
	// scored again with the current model; if that score is below
	// RescoreBelow × its admission score (its sender sank meanwhile) it
	// goes back into the queue at the new score instead. 0 disables it.
	RescoreBelow    float64
	PartialCapacity int
	RecentCapacity  int
	PacketBatch     int // packets taken from one channel per visit
	FeedbackBatch   int // records taken from each feedback channel per visit

	// OutputBackpressure keeps packets queued rather than overwrite records
	// the sigverify consumer has not read. Only for a consumer that
	// publishes its read index promptly; otherwise sends would stall.
	OutputBackpressure bool

	Fees   score.FeeParams
	Limits score.Limits // account-lock limit, v1 switch (zero: mainnet's)
	Model  model.Params
	// Pending bounds the model's pending claims: packets sent to sigverify
	// whose outcome has not come yet, which the model counts as claims not
	// failed so that a young record is not judged on the failures that
	// come back first (model.IPSigner.Pend). Kept when learning; Max 0
	// keeps none.
	Pending model.PendingParams
	Policy  Policy

	ModelFile    string        // loaded at start if present; saved on shutdown and every SaveInterval
	SaveInterval time.Duration // 0: only on shutdown

	// Handoff receives a row per model input: each completed transaction
	// and, when learning and unless the hand-off is CompletedOnly, each
	// penalty (failed sigverify, unparsable packet), all in one sequence so
	// that replay rebuilds the model exactly. nil disables row output.
	Handoff *metastore.Handoff

	LogInterval     time.Duration // summary log line; 0 disables
	PublishInterval time.Duration // counter snapshots for metrics
	PeerCheck       time.Duration // heartbeat and file-replacement checks
	// IdleSleep, when positive, sleeps this long after the loop has been
	// idle for a millisecond (tests and the demo share their CPUs). Zero
	// keeps the loop spinning, yielding with runtime.Gosched only.
	IdleSleep time.Duration

	Logger *slog.Logger
}

// DefaultConfig returns the daemon's defaults.
func DefaultConfig() Config {
	return Config{
		Optional:        []string{channels.RE1, channels.RE2},
		TargetPPS:       1_000_000,
		PacerTick:       time.Millisecond,
		QueueCapacity:   16384,
		QueueTTL:        2 * time.Second,
		RescoreBelow:    0.5,
		PartialCapacity: 1 << 20,
		RecentCapacity:  1 << 20,
		PacketBatch:     64,
		FeedbackBatch:   1024,
		Fees:            score.DefaultFeeParams(),
		Model:           model.DefaultParams(),
		Pending:         model.DefaultPendingParams(),
		Policy:          PolicyModel,
		SaveInterval:    5 * time.Minute,
		LogInterval:     5 * time.Second,
		PublishInterval: 100 * time.Millisecond,
		PeerCheck:       time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.TargetPPS == 0 {
		errs = append(errs, errors.New("target-pps must be positive"))
	}
	if c.PacerTick <= 0 || c.PacerTick > time.Second {
		errs = append(errs, fmt.Errorf("pacer tick %v must be in (0, 1s]", c.PacerTick))
	}
	if c.QueueCapacity < 1 || c.QueueCapacity > 1<<24 {
		errs = append(errs, fmt.Errorf("queue capacity %d must be in [1, %d]", c.QueueCapacity, 1<<24))
	}
	if !(c.RescoreBelow >= 0 && c.RescoreBelow <= 1) {
		errs = append(errs, fmt.Errorf("rescore-below %v must be between 0 and 1", c.RescoreBelow))
	}
	if c.QueueTTL <= 0 {
		errs = append(errs, fmt.Errorf("queue TTL %v must be positive", c.QueueTTL))
	}
	if c.PartialCapacity < 1 || c.PartialCapacity > 1<<28 {
		errs = append(errs, fmt.Errorf("partial-meta capacity %d must be in [1, %d]", c.PartialCapacity, 1<<28))
	}
	if c.RecentCapacity < 1 || c.RecentCapacity > 1<<28 {
		errs = append(errs, fmt.Errorf("recent-signature capacity %d must be in [1, %d]", c.RecentCapacity, 1<<28))
	}
	if c.PacketBatch < 1 || c.FeedbackBatch < 1 {
		errs = append(errs, errors.New("batch sizes must be positive"))
	}
	if c.PublishInterval <= 0 || c.PeerCheck <= 0 {
		errs = append(errs, errors.New("publish and peer-check intervals must be positive"))
	}
	if err := c.Model.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Pending.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
