package sidecar

import (
	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/score"
)

// Counter names one of the loop's event counters.
type Counter int

// The loop's event counters. Their names (counterInfo) are the metric and
// log names; keep them stable.
const (
	Duplicates Counter = iota
	RecentlyConfirmed
	RecentlyConfirmedAtSend
	Admitted
	Evicted
	RejectedLow
	Gated
	Expired
	Sent
	OutputOverwrite
	HeldBack
	ParsePenalties
	SigverifyFailed
	SigverifyBadAddr
	Results
	Joined
	JoinMisses
	ModelUpdates
	RowsOffered
	FeedbackRows
	RowsDropped
	StatusSignatures
	Rejoins
	ChannelFaults
	Rescored
	numCounters
)

var counterInfo = [numCounters]struct{ name, help string }{
	Duplicates:              {"duplicates", "Packets the queue would take, dropped because a packet with the same hash was queued recently."},
	RecentlyConfirmed:       {"recently_confirmed", "Packets the queue would take, dropped on arrival because their first signature was recently confirmed."},
	RecentlyConfirmedAtSend: {"recently_confirmed_at_send", "Queued packets dropped at send time because their first signature was confirmed meanwhile."},
	Admitted:                {"admitted", "Packets pushed into the priority queue."},
	Evicted:                 {"evicted", "Queued packets evicted by a higher-scoring newcomer."},
	RejectedLow:             {"rejected_low", "Packets not queued because the queue was full of higher scores (decided before the dedup and recently-confirmed lookups)."},
	Gated:                   {"gated", "Packets refused before parsing: their sender IP's score, times the best signer score and the highest fee per CU a transaction can declare, could not beat the full queue's lowest entry (no parse, no penalty)."},
	Expired:                 {"expired", "Queued packets dropped because they were older than the queue TTL."},
	Sent:                    {"sent", "Packets written to qos_to_sig."},
	OutputOverwrite:         {"output_overwrite", "Packets sent while the sigverify consumer was a full window (3/4 of qos_to_sig) behind, per its published head: it skips as many."},
	HeldBack:                {"held_back", "Sends deferred because the sigverify consumer was a full window behind (--output-backpressure)."},
	ParsePenalties:          {"parse_penalties", "Model penalties for unparsable packets."},
	SigverifyFailed:         {"sigverify_failed", "Failed-sigverify records received."},
	SigverifyBadAddr:        {"sigverify_bad_addr", "Failed-sigverify records without a valid address (ignored)."},
	Results:                 {"scheduler_results", "Scheduler result records received."},
	Joined:                  {"joined", "Scheduler results joined with their partial metadata."},
	JoinMisses:              {"join_misses", "Scheduler results whose partial metadata was gone (evicted, unknown or already joined)."},
	ModelUpdates:            {"model_updates", "Scheduler results the model learned from (each updates it at once)."},
	RowsOffered:             {"rows_offered", "Rows (completed transactions and feedback) handed to the metastore."},
	FeedbackRows:            {"feedback_rows", "Of the rows handed to the metastore, penalties (failed sigverify, unparsable packets)."},
	RowsDropped:             {"rows_dropped", "Rows dropped because the metastore hand-off was full."},
	StatusSignatures:        {"status_signatures", "Confirmed signatures received from tx_status_cache."},
	Rejoins:                 {"rejoins", "Channels rejoined after the validator recreated them, or after a fault once their file was valid again."},
	ChannelFaults:           {"channel_faults", "Memory faults on a channel file that another process shrank under the mapping; the channel is dropped until its file is valid again (per channel: qos_channel_faults_total)."},
	Rescored:                {"rescored", "Packets queued again at send time because their sender's score fell below --rescore-below of their admission score."},
}

// Name returns the counter's stable name.
func (c Counter) Name() string {
	if c < 0 || c >= numCounters {
		return "unknown"
	}
	return counterInfo[c].name
}

// The packet channels, in visiting order; their index is the source
// channel number recorded in metadata rows.
var packetChannels = [...]string{channels.TPU, channels.FWD, channels.RE1, channels.RE2}

const numPacketChannels = len(packetChannels)

// The channels the loop consumes besides the packet channels, indexed after
// them in Snapshot.Skipped and Snapshot.ProducerAlive.
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

// Snapshot is a copy of the loop's counters and gauges, published a few
// times a second. It is a plain value: publishing it allocates nothing.
type Snapshot struct {
	At int64 // unix ns when taken

	Counters [numCounters]uint64
	Received [numPacketChannels]uint64
	Rejects  [score.NumRejects]uint64

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

	QueueLen      int
	RecentLen     int
	ModelIPs      int
	ModelSigners  int
	MaxStallNanos int64 // longest loop iteration since the previous snapshot
	MaxLearnNanos int64 // longest model update since the previous snapshot
	Iterations    uint64
	// BusyNanos is the time spent in loop iterations that handled at least
	// one record, since the start: over an interval, its growth divided by
	// the interval's length is how much of its core the loop needs for
	// the traffic (the rest it spends polling empty channels).
	BusyNanos int64
}

// Counter returns one counter's value.
func (s *Snapshot) Counter(c Counter) uint64 { return s.Counters[c] }

// TotalReceived sums packets received over the packet channels.
func (s *Snapshot) TotalReceived() uint64 {
	var n uint64
	for _, v := range s.Received {
		n += v
	}
	return n
}

// TotalRejected sums packets rejected for any reason.
func (s *Snapshot) TotalRejected() uint64 {
	var n uint64
	for _, v := range s.Rejects {
		n += v
	}
	return n
}
