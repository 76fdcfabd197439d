// Package admit is the per-packet admission decision, shared by every mode
// of the daemon: inspect a transaction (score.Evaluator.InspectTx, the
// one inspection: size, address, flags, parse, sanitize, compute budget),
// refuse it early by its sender's reputation (the sender gate), score it,
// and decide whether the priority queue takes it, after the
// recently-confirmed and duplicate lookups.
//
// It does no I/O and knows no channel: a caller hands it a transaction's
// wire bytes, source address and flags (Tx) with its own clock, and gets a
// Decision back — the verdict, the score and keys to queue it with, and
// the penalty the caller should apply to the model. Counts go into a
// Counters value the caller owns. The sidecar feeds it packets from the
// validator's shared-memory channels; pack mode feeds it transactions from
// Agave's external-scheduler interface.
//
// The tables it decides with are the caller's, all used from one
// goroutine: the priority queue (score.Queue), the partial meta of admitted
// packets (PartialStore: dedup, and the join with the scheduler's result),
// the recently confirmed signatures (sigcache.Set) and the model. Admit
// reads the model and never changes it.
//
// Per packet, in arrival order, in two steps so that a caller can batch
// the lookups between them (each a likely cache miss in a million-entry
// table):
//
//	Judge:  sender gate? ─► inspect ─► score ─► would the queue take it? ─► keys
//	          │ gated          │ rejected (penalty when unparsable)
//	Peek:   the dedup and recently-confirmed entries of the packets with keys
//	Admit:  gated: gate again ─► inspect, score │ queue takes it? ─► recently
//	        confirmed? ─► duplicate? (else remembered) ─► Queue: the caller pushes
//
// Nothing here allocates.
package admit
