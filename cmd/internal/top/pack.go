package top

import (
	"sort"
	"strconv"
	"strings"
	"time"
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
	pOwnLive     = "qos_pack_own_blocks_live"
	pQueue       = "qos_pack_queue_length"
	pQueueCap    = "qos_pack_queue_capacity"
	pHeld        = "qos_pack_payloads_held"
	pWorker      = "qos_pack_worker_batches_total"
	pWorkerBusy  = "qos_pack_worker_busy_seconds_total"
	pCostSlot    = "qos_pack_slot_cost_used"
	pLeaderSlots = "qos_pack_leader_slots_total"
	pLeaderCost  = "qos_pack_leader_slot_cost_units_total"
	pPenalties   = "qos_pack_parse_penalties_total"
	pDispatchWin = "qos_pack_arrival_to_dispatch_interval_seconds"
	pExecWin     = "qos_pack_arrival_to_execution_interval_seconds"
	pWindow      = "qos_pack_stats_interval_seconds"
	mModelObs    = "qos_model_observations_total"
	// Before the interval summaries, qos pack exported p99 gauges
	// cumulative since its start; top still reads them from such a
	// daemon.
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

	if cur.has(pResults) && len(cur.labelValues(pResults, "blame")) > 0 {
		sender := func(b string) bool { return b == "sender" }
		bl.rows = append(bl.rows, viewRow{"sender-caused (charged)", []string{
			fmtRate(rateWhere(prev, cur, pResults, "blame", sender)), fmtCount(cur.sumWhere(pResults, "blame", sender))}})
	} else {
		bl.rows = append(bl.rows, viewRow{"sender-caused (charged)", []string{missing, missing}})
	}
	bl.rows = append(bl.rows, viewRow{"parse penalties", []string{rt(pPenalties), tot(pPenalties)}})

	sc := viewGroup{title: "pack: scheduler", cols: []string{"now", "of"}}
	used, okU := cur.value(pCostUsed)
	limit, okL := cur.value(pCostLimit)
	slotUsed, okS := cur.value(pCostSlot)
	inflight, okF := cur.value(pInFlight)
	// Mean block fill of the leader slots that ended between the two
	// scrapes, else since the start.
	fill, okFill := 0.0, false
	if dc, okC := rate(prev, cur, pLeaderCost); okC {
		if ds, okD := rate(prev, cur, pLeaderSlots); okD && ds > 0 {
			fill, okFill = dc/ds, true
		}
	}
	if !okFill {
		c, okC := cur.value(pLeaderCost)
		n, okN := cur.value(pLeaderSlots)
		fill, okFill = c/n, okC && okN && n > 0
	}
	// leaked_blocks is the leak itself since qos pack also exports
	// own_blocks_live; before, it counted the arrays in flight too.
	leaked, okK := cur.value(pLeaked)
	if !cur.has(pOwnLive) {
		leaked -= inflight
		okK = okK && okF
	}
	// The block's share used: as the validator reports it, or (an older
	// daemon) the cost in flight.
	share, okSh := slotUsed, okS
	if !okS {
		share, okSh = used, okU
	}
	qlen, okQ := cur.value(pQueue)
	qcap, okQC := cur.value(pQueueCap)
	sc.rows = append(sc.rows,
		viewRow{"session up", []string{fmtBool(cur.value(pUp)), ""}},
		viewRow{"slot cost used", []string{fmtCount(slotUsed, okS), fmtCount(limit, okL)}},
		viewRow{"slot cost in flight", []string{fmtCount(used, okU), fmtCount(limit, okL)}},
		viewRow{"share of block limit", []string{fmtPct(share/limit, okSh && okL && limit > 0), ""}},
		viewRow{"mean leader block fill", []string{fmtPct(fill/limit, okFill && okL && limit > 0), ""}},
		viewRow{"batches in flight", []string{fmtCount(inflight, okF), ""}},
		viewRow{"locks held", []string{now(pLocks), ""}},
		viewRow{"leaked blocks", []string{fmtCount(leaked, okK), ""}},
		viewRow{"queued", []string{fmtCount(qlen, okQ), fmtCount(qcap, okQC)}},
		viewRow{"payloads held", []string{now(pHeld), ""}},
	)
	// Latency: p50 and p99 of the daemon's last stats interval (its
	// summary log line's figures), or an older daemon's cumulative p99.
	win := ""
	if w, ok := cur.value(pWindow); ok && w > 0 {
		win = " (last " + time.Duration(w*float64(time.Second)).Round(time.Second).String() + ")"
	}
	for _, l := range []struct{ name, win, old string }{
		{"arrival→dispatch", pDispatchWin, pDispatchP99}, {"arrival→execution", pExecWin, pExecP99},
	} {
		if cur.has(l.win) {
			sc.rows = append(sc.rows,
				viewRow{l.name + " p50" + win, []string{fmtSeconds(cur.value(l.win, "quantile", "0.5")), ""}},
				viewRow{l.name + " p99" + win, []string{fmtSeconds(cur.value(l.win, "quantile", "0.99")), ""}})
		} else {
			sc.rows = append(sc.rows, viewRow{l.name + " p99", []string{fmtSeconds(cur.value(l.old)), ""}})
		}
	}
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
	// Utilisation: the share of the time each worker had a batch out.
	for _, w := range workers {
		if cur.has(pWorkerBusy) {
			sc.rows = append(sc.rows, viewRow{"worker " + w + " busy", []string{fmtPct(rate(prev, cur, pWorkerBusy, "worker", w)), ""}})
		}
	}
	groups := []viewGroup{bl, sc}
	// The model (policy model): sidecar mode's names.
	if cur.has(mModel) {
		md := viewGroup{title: "pack: model", cols: []string{"/s or now", "total"}}
		md.rows = append(md.rows,
			viewRow{"IPs", []string{fmtCount(cur.value(mModel, "table", "ip")), ""}},
			viewRow{"/24 prefixes", []string{fmtCount(cur.value(mModel, "table", "prefix24")), ""}},
			viewRow{"/16 prefixes", []string{fmtCount(cur.value(mModel, "table", "prefix16")), ""}},
			viewRow{"signers", []string{fmtCount(cur.value(mModel, "table", "signer")), ""}},
			viewRow{"learnt paid", []string{rt(mModelObs, "result", "paid"), tot(mModelObs, "result", "paid")}},
			viewRow{"learnt unpaid", []string{rt(mModelObs, "result", "unpaid"), tot(mModelObs, "result", "unpaid")}},
			viewRow{"evicted (tables full)", []string{rt(mEvicted), tot(mEvicted)}},
			viewRow{"newcomer factor", []string{fmtScore(cur.value(mNewcomer)), ""}},
		)
		groups = append(groups, md)
	}
	return groups
}
