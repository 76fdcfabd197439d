package sidecar

import (
	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/channels"
)

// Counter names one of the loop's event counters.
type Counter int

// The loop's event counters, besides admission's (admit.Event). Their
// names (counterNames) are the metric's event label and the log keys; keep
// them stable (some predate today's Go names: joined, join_misses,
// feedback_rows).
const (
	// RecentlyConfirmedAtSend: queued packets dropped at send time because
	// their first signature was confirmed meanwhile.
	RecentlyConfirmedAtSend Counter = iota
	// Expired: queued packets dropped because they were older than the queue TTL.
	Expired
	// Sent: packets written to qos_to_sig.
	Sent
	// OutputOverwrite: packets sent while the sigverify consumer was a full
	// window (3/4 of qos_to_sig) behind, per its published head: it skips as
	// many.
	OutputOverwrite
	// HeldBack: sends deferred because the sigverify consumer was a full
	// window behind (--output-backpressure).
	HeldBack
	// ParsePenalties: model penalties for unparsable packets.
	ParsePenalties
	// SigverifyFailed: failed-sigverify records received.
	SigverifyFailed
	// SigverifyBadAddr: failed-sigverify records without a valid address
	// (ignored).
	SigverifyBadAddr
	// Results: scheduler result records received.
	Results
	// Matched: scheduler results matched with the partial metadata of an
	// admitted packet.
	Matched
	// Unmatched: scheduler results whose partial metadata was gone (evicted,
	// unknown or already matched).
	Unmatched
	// ModelUpdates: scheduler results the model learned from (each updates
	// it at once).
	ModelUpdates
	// RowsOffered: rows (completed transactions and penalties) handed to the
	// metastore.
	RowsOffered
	// PenaltyRows: of the rows handed to the metastore, penalties (failed
	// sigverify, unparsable packets).
	PenaltyRows
	// RowsDropped: rows dropped because the metastore hand-off was full.
	RowsDropped
	// StatusSignatures: confirmed signatures received from tx_status_cache.
	StatusSignatures
	// Rejoins: channels rejoined after the validator recreated them, or
	// after a fault once their file was valid again.
	Rejoins
	// ChannelFaults: memory faults on a channel file that another process
	// shrank under the mapping; the channel is dropped until its file is
	// valid again (per channel: qos_channel_faults_total).
	ChannelFaults
	// Rescored: packets queued again at send time because their sender's
	// score fell below --rescore-below of their admission score.
	Rescored
	numCounters
)

var counterNames = [numCounters]string{
	RecentlyConfirmedAtSend: "recently_confirmed_at_send",
	Expired:                 "expired",
	Sent:                    "sent",
	OutputOverwrite:         "output_overwrite",
	HeldBack:                "held_back",
	ParsePenalties:          "parse_penalties",
	SigverifyFailed:         "sigverify_failed",
	SigverifyBadAddr:        "sigverify_bad_addr",
	Results:                 "scheduler_results",
	Matched:                 "joined",
	Unmatched:               "join_misses",
	ModelUpdates:            "model_updates",
	RowsOffered:             "rows_offered",
	PenaltyRows:             "feedback_rows",
	RowsDropped:             "rows_dropped",
	StatusSignatures:        "status_signatures",
	Rejoins:                 "rejoins",
	ChannelFaults:           "channel_faults",
	Rescored:                "rescored",
}

// Name returns the counter's stable name.
func (c Counter) Name() string {
	if c < 0 || c >= numCounters {
		return "unknown"
	}
	return counterNames[c]
}

// The packet channels, in visiting order; their index is the source
// channel number recorded in metadata rows.
var packetChannels = [...]string{channels.TPU, channels.FWD, channels.RE1, channels.RE2}

const numPacketChannels = len(packetChannels)

// The channels the loop consumes besides the packet channels, indexed after
// them in Stats.Skipped and Stats.ProducerAlive.
const (
	chanSig = numPacketChannels + iota
	chanSch
	chanStatus
	numInputs
)

var inputNames = [numInputs]string{
	channels.TPU, channels.FWD, channels.RE1, channels.RE2,
	channels.SigToQoS, channels.SchToQoS, channels.TxStatusCache,
}

// Stats is a copy of the loop's counters and gauges, published a few
// times a second. It is a plain value: publishing it allocates nothing.
type Stats struct {
	At int64 // unix ns when taken

	Counters  [numCounters]uint64
	Received  [numPacketChannels]uint64
	Admission admit.Counters // admission's events and rejects, by reason

	// Per input channel (packet channels, then sig_to_qos, sch_to_qos,
	// tx_status_cache): records lost to overrun, whether it is joined, and
	// whether its producer's heartbeat moved at the last check.
	Skipped       [numInputs]uint64
	Joined        [numInputs]bool
	ProducerAlive [numInputs]bool

	// Per channel (the inputs, then qos_to_sig): memory faults of a file
	// shrunk under the mapping, and whether the channel is dropped after
	// one, waiting for its file to be valid again.
	Faults  [numChannels]uint64
	Faulted [numChannels]bool

	QueueLen  int
	RecentLen int
	// QueueLowest is the lowest queued score (the bar a newcomer must
	// clear when the queue is full); meaningless when QueueLen is 0.
	QueueLowest float64
	// The model's table sizes (IPs, /24 and /48 prefixes, /16 and /32
	// prefixes, fee payers), entries evicted from them since the start,
	// and its newcomer factor: the IP factor of a sender in a
	// neighbourhood it has no record of (model.Stats.UnknownIP).
	ModelIPs, ModelNearPrefixes, ModelWidePrefixes, ModelSigners int
	ModelEvictedIPs, ModelEvictedPrefixes, ModelEvictedSigners   uint64
	ModelNewcomer                                                float64
	// ModelBar is the model's inclusion bar (model.Stats.Bar).
	ModelBar float64
	// The model's pending claims (packets at sigverify, outcome not yet
	// known): held now, and taken back since the start without an
	// outcome, after the TTL or to make room (model.PendingStats).
	ModelPending                             int
	ModelPendingExpired, ModelPendingDropped uint64
	MaxStallNanos                            int64 // longest loop iteration since the previous snapshot
	MaxLearnNanos                            int64 // longest model update since the previous snapshot
	Iterations                               uint64
	// BusyNanos is the time spent in loop iterations that handled at least
	// one record, since the start: over an interval, its growth divided by
	// the interval's length is how much of its core the loop needs for
	// the traffic (the rest it spends polling empty channels).
	BusyNanos int64
}

// Counter returns one counter's value.
func (s *Stats) Counter(c Counter) uint64 { return s.Counters[c] }

// TotalReceived sums packets received over the packet channels.
func (s *Stats) TotalReceived() uint64 {
	var n uint64
	for _, v := range s.Received {
		n += v
	}
	return n
}

// TotalRejected sums packets rejected by inspection, for any reason.
func (s *Stats) TotalRejected() uint64 { return s.Admission.TotalRejected() }

// Event returns one admission event's count.
func (s *Stats) Event(e admit.Event) uint64 { return s.Admission.Events[e] }
