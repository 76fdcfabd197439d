package top

import (
	"sort"
	"strconv"
	"strings"
)

// The pack-mode metrics top reads by name (packmode/metrics.go and
// cmd/qos/pack_metrics.go define them). Every qos_pack_ series also shows
// in the "pack mode: all series" group, so a new one needs no new top.
const (
	pUp          = "qos_pack_session_up"
	pReceived    = "qos_pack_received_total"
	pEnds        = "qos_pack_transactions_total"
	pResults     = "qos_pack_execution_results_total"
	pUnprocessed = "qos_pack_unprocessed_batches_total"
	pVotes       = "qos_pack_votes_total"
	pVotesLanded = "qos_pack_votes_landed_total"
	pCostUsed    = "qos_pack_slot_cost_in_flight"
	pCostLimit   = "qos_pack_slot_cost_limit"
	pLocks       = "qos_pack_locks_held"
	pInFlight    = "qos_pack_batches_in_flight"
	pLeaked      = "qos_pack_leaked_blocks"
	pQueue       = "qos_pack_queue_length"
	pHeld        = "qos_pack_payloads_held"
	pWorker      = "qos_pack_worker_batches_total"
	pDispatchP99 = "qos_pack_arrival_to_dispatch_p99_seconds"
	pExecP99     = "qos_pack_arrival_to_execution_p99_seconds"
)

// schedulerCaused reports whether a not-included reason is the
// scheduler's doing rather than the sender's: the accounts were in use,
// a block, account or vote cost limit was reached, or the bank was gone
// (the batch came too late). The dashboard's qos-pack.json matches the
// same set (account_in_use|bank_not_available|would_exceed_.+).
func schedulerCaused(reason string) bool {
	return reason == "account_in_use" || reason == "bank_not_available" || strings.HasPrefix(reason, "would_exceed_")
}

// isPackOnly reports whether a scrape is of `qos pack` (pack metrics and
// none of the sidecar's), whose sidecar groups would show only dashes.
func isPackOnly(cur *sample) bool {
	if cur == nil || cur.has(mReceived) || cur.has(mEvents) {
		return false
	}
	for n := range cur.fams {
		if strings.HasPrefix(n, packPrefix) {
			return true
		}
	}
	return false
}

// sumWhere sums the series of name whose label passes keep; ok is false
// when the family is absent.
func (s *sample) sumWhere(name, label string, keep func(string) bool) (v float64, ok bool) {
	if s == nil || s.fams[name] == nil {
		return 0, false
	}
	for _, p := range s.fams[name].points {
		if keep(p.labels[label]) {
			v += p.v
		}
	}
	return v, true
}

// rateWhere is rate over the series sumWhere picks; a series that first
// appears in cur counts from 0 (pack exports a reason once it occurs).
func rateWhere(prev, cur *sample, name, label string, keep func(string) bool) (float64, bool) {
	if prev == nil || cur == nil {
		return 0, false
	}
	a, okA := prev.sumWhere(name, label, keep)
	b, okB := cur.sumWhere(name, label, keep)
	dt := cur.at.Sub(prev.at).Seconds()
	if !okA || !okB || dt <= 0 || b < a {
		return 0, false
	}
	return (b - a) / dt, true
}

// packGroups are the figures that say whether qos pack helps the
// validator's blocks, then its scheduler's state.
func packGroups(prev, cur *sample) []viewGroup {
	rt := func(name string, kv ...string) string { return fmtRate(rate(prev, cur, name, kv...)) }
	tot := func(name string, kv ...string) string { return fmtCount(cur.value(name, kv...)) }
	now := func(name string) string { return fmtCount(cur.value(name)) }

	bl := viewGroup{title: "pack: blocks", cols: []string{"/s", "total"}}
	sched := func(r string) bool { return schedulerCaused(r) }
	missRate, okR := rateWhere(prev, cur, pResults, "reason", sched)
	missTot, okT := cur.sumWhere(pResults, "reason", sched)
	unRate, okUR := rate(prev, cur, pUnprocessed)
	unTot, okUT := cur.value(pUnprocessed)
	bl.rows = append(bl.rows,
		viewRow{"received", []string{rt(pReceived), tot(pReceived)}},
		viewRow{"included", []string{rt(pEnds, "end", "included"), tot(pEnds, "end", "included")}},
		viewRow{"failed (not included)", []string{rt(pEnds, "end", "not_included"), tot(pEnds, "end", "not_included")}},
		viewRow{"scheduler-caused misses", []string{fmtRate(missRate, okR), fmtCount(missTot, okT)}},
		viewRow{"batches unprocessed", []string{fmtRate(unRate, okUR), fmtCount(unTot, okUT)}},
		viewRow{"expired in queue", []string{rt(pEnds, "end", "expired"), tot(pEnds, "end", "expired")}},
		viewRow{"refused (queue full)", []string{rt(pEnds, "end", "rejected_low"), tot(pEnds, "end", "rejected_low")}},
		viewRow{"votes received", []string{rt(pVotes), tot(pVotes)}},
		viewRow{"votes landed", []string{rt(pVotesLanded), tot(pVotesLanded)}},
	)

	sc := viewGroup{title: "pack: scheduler", cols: []string{"now", "of"}}
	used, okU := cur.value(pCostUsed)
	limit, okL := cur.value(pCostLimit)
	leaked, okK := cur.value(pLeaked)
	inflight, okF := cur.value(pInFlight)
	sc.rows = append(sc.rows,
		viewRow{"session up", []string{fmtBool(cur.value(pUp)), ""}},
		viewRow{"slot cost in flight", []string{fmtCount(used, okU), fmtCount(limit, okL)}},
		viewRow{"share of block limit", []string{fmtPct(used/limit, okU && okL && limit > 0), ""}},
		viewRow{"batches in flight", []string{fmtCount(inflight, okF), ""}},
		viewRow{"locks held", []string{now(pLocks), ""}},
		// leaked_blocks counts the batch arrays not freed, in flight
		// included: what is not in flight is a leak.
		viewRow{"leaked blocks", []string{fmtCount(leaked-inflight, okK && okF), ""}},
		viewRow{"queued", []string{now(pQueue), ""}},
		viewRow{"payloads held", []string{now(pHeld), ""}},
		viewRow{"arrival→dispatch p99", []string{fmtSeconds(cur.value(pDispatchP99)), ""}},
		viewRow{"arrival→execution p99", []string{fmtSeconds(cur.value(pExecP99)), ""}},
	)
	// Worker utilisation: batches per second each worker was sent.
	workers := cur.labelValues(pWorker, "worker")
	sort.Slice(workers, func(i, j int) bool {
		a, errA := strconv.Atoi(workers[i])
		b, errB := strconv.Atoi(workers[j])
		if errA != nil || errB != nil {
			return workers[i] < workers[j]
		}
		return a < b
	})
	for _, w := range workers {
		sc.rows = append(sc.rows, viewRow{"worker " + w + " batches/s", []string{rt(pWorker, "worker", w), tot(pWorker, "worker", w)}})
	}
	return []viewGroup{bl, sc}
}
