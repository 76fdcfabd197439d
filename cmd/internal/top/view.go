package top

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/solqos/qos/channels"
)

// missing is shown for a figure the daemon does not export (an older or
// newer daemon, a mode without it) or that needs one more scrape.
const missing = "—"

// viewGroup is one titled block of the top screen: a header of column
// names and rows of a label and one cell per column.
type viewGroup struct {
	title      string
	cols       []string
	rows       []viewRow
	labelWidth int // 0: the default labelWidth
}

type viewRow struct {
	label string
	cells []string
}

// viewOpts carries what the view needs besides the scrapes.
type viewOpts struct {
	targetPPS float64 // --target-pps given to top (0: read qos_target_pps)
}

// The metrics top reads; the daemon defines them (sidecar/observe.go,
// cmd/qos/db.go, cmd/qos/ops_metrics.go). Families top does not know
// appear under "other" so that new counters show without a new top.
const (
	mEvents    = "qos_events_total"
	mReceived  = "qos_received_packets_total"
	mRejected  = "qos_rejected_packets_total"
	mSkipped   = "qos_overrun_skipped_total"
	mAlive     = "qos_producer_alive"
	mJoined    = "qos_channel_joined"
	mFaulted   = "qos_channel_faulted"
	mFaults    = "qos_channel_faults_total"
	mQueue     = "qos_queue_length"
	mQueueCap  = "qos_queue_capacity"
	mQueueLow  = "qos_queue_lowest_score"
	mRecent    = "qos_recent_signatures"
	mModel     = "qos_model_entries"
	mEvicted   = "qos_model_evicted_total"
	mNewcomer  = "qos_model_newcomer_factor"
	mStall     = "qos_loop_max_stall_seconds"
	mLearn     = "qos_model_update_max_seconds"
	mBusy      = "qos_loop_busy_seconds_total"
	mTarget    = "qos_target_pps"
	mDBRows    = "qos_db_rows_total"
	mSpool     = "qos_db_spool_bytes"
	mSpoolRows = "qos_db_spool_rows"
	mDBConn    = "qos_db_connected"
	mDBErrs    = "qos_db_errors_total"
	packPrefix = "qos_pack_"
)

// known lists the families the fixed groups show; others with the qos_
// prefix go to the "other" group.
var known = map[string]bool{
	mEvents: true, mReceived: true, mRejected: true, mSkipped: true, mAlive: true, mJoined: true,
	mFaulted: true, mFaults: true, mQueue: true, mQueueCap: true, mQueueLow: true, mRecent: true, mModel: true, mEvicted: true, mNewcomer: true,
	mStall: true, mLearn: true, mBusy: true, mTarget: true, mDBRows: true, mSpool: true,
	mSpoolRows: true, mDBConn: true, mDBErrs: true,
}

// buildView turns the last two scrapes into the groups on screen. prev may
// be nil (first scrape: no rates yet); cur may be nil (no scrape yet).
func buildView(prev, cur *sample, o viewOpts) []viewGroup {
	rt := func(name string, kv ...string) string { return fmtRate(rate(prev, cur, name, kv...)) }
	tot := func(name string, kv ...string) string { return fmtCount(cur.value(name, kv...)) }
	ev := func(label, event string) viewRow {
		return viewRow{label, []string{rt(mEvents, "event", event), tot(mEvents, "event", event)}}
	}
	var groups []viewGroup
	if isPackOnly(cur) {
		// qos pack: its own figures, then every qos_pack_ series; the
		// sidecar's groups would show nothing but dashes.
		groups = packGroups(prev, cur)
		if g := genericGroup("pack mode: all series", prev, cur, func(n string) bool { return strings.HasPrefix(n, packPrefix) }, packPrefix); len(g.rows) > 0 {
			groups = append(groups, g)
		}
		return groups
	}

	// Ingress: packets read per packet channel.
	in := viewGroup{title: "packets in", cols: []string{"/s", "total"}}
	for _, ch := range channelOrder(cur.labelValues(mReceived, "channel")) {
		in.rows = append(in.rows, viewRow{ch, []string{rt(mReceived, "channel", ch), tot(mReceived, "channel", ch)}})
	}
	in.rows = append(in.rows, viewRow{"all channels", []string{rt(mReceived), tot(mReceived)}})
	groups = append(groups, in)

	// Admission outcomes, then refusals by reason (the ones seen so far).
	adm := viewGroup{title: "admission", cols: []string{"/s", "total"}}
	adm.rows = append(adm.rows,
		ev("admitted", "admitted"),
		ev("refused: queue full (low)", "rejected_low"),
		ev("refused: gated (sender IP)", "gated"),
		ev("evicted", "evicted"),
		ev("expired (TTL)", "expired"),
		ev("duplicates", "duplicates"),
		ev("recently confirmed", "recently_confirmed"),
		ev("confirmed while queued", "recently_confirmed_at_send"),
	)
	type reason struct {
		name string
		v    float64
	}
	var reasons []reason
	for _, r := range cur.labelValues(mRejected, "reason") {
		if v, _ := cur.value(mRejected, "reason", r); v > 0 {
			reasons = append(reasons, reason{r, v})
		}
	}
	sort.Slice(reasons, func(i, j int) bool {
		if reasons[i].v != reasons[j].v {
			return reasons[i].v > reasons[j].v
		}
		return reasons[i].name < reasons[j].name
	})
	for _, r := range reasons {
		adm.rows = append(adm.rows, viewRow{"refused: " + r.name, []string{rt(mRejected, "reason", r.name), tot(mRejected, "reason", r.name)}})
	}
	if cur.has(mRejected) {
		adm.rows = append(adm.rows, viewRow{"refused: all reasons", []string{rt(mRejected), tot(mRejected)}})
	}
	groups = append(groups, adm)

	// Output toward sigverify against the target, and the loop's load.
	target, haveTarget := o.targetPPS, o.targetPPS > 0
	if !haveTarget {
		target, haveTarget = cur.value(mTarget)
	}
	sentRate, haveSent := rate(prev, cur, mEvents, "event", "sent")
	out := viewGroup{title: "output", cols: []string{"now", "total"}}
	out.rows = append(out.rows,
		viewRow{"sent /s", []string{fmtRate(sentRate, haveSent), tot(mEvents, "event", "sent")}},
		viewRow{"target /s", []string{fmtRate(target, haveTarget), ""}},
		viewRow{"sent / target", []string{fmtPct(sentRate/target, haveSent && haveTarget && target > 0), ""}},
		ev("overwritten unread /s", "output_overwrite"),
		ev("held back /s", "held_back"),
		viewRow{"loop busy", []string{fmtPct(rate(prev, cur, mBusy)), fmtSeconds(cur.value(mBusy))}},
		viewRow{"longest iteration", []string{fmtSeconds(cur.value(mStall)), ""}},
	)
	groups = append(groups, out)

	// The priority queue.
	q := viewGroup{title: "queue", cols: []string{"now", "of"}}
	qlen, okLen := cur.value(mQueue)
	qcap, okCap := cur.value(mQueueCap)
	q.rows = append(q.rows,
		viewRow{"depth", []string{fmtCount(qlen, okLen), fmtCount(qcap, okCap)}},
		viewRow{"fill", []string{fmtPct(qlen/qcap, okLen && okCap && qcap > 0), ""}},
		viewRow{"lowest queued score", []string{fmtScore(cur.value(mQueueLow)), ""}},
		viewRow{"recent signatures", []string{fmtCount(cur.value(mRecent)), ""}},
	)
	groups = append(groups, q)

	// What the validator told the model.
	fb := viewGroup{title: "feedback", cols: []string{"/s", "total"}}
	fb.rows = append(fb.rows,
		ev("sigverify failures", "sigverify_failed"),
		ev("parse penalties", "parse_penalties"),
		ev("scheduler results", "scheduler_results"),
		ev("joined with admission", "joined"),
		ev("join misses", "join_misses"),
		ev("confirmed signatures", "status_signatures"),
	)
	groups = append(groups, fb)

	// The model.
	md := viewGroup{title: "model", cols: []string{"now", ""}}
	md.rows = append(md.rows,
		viewRow{"IPs", []string{fmtCount(cur.value(mModel, "table", "ip")), ""}},
		viewRow{"/24 prefixes", []string{fmtCount(cur.value(mModel, "table", "prefix24")), ""}},
		viewRow{"/16 prefixes", []string{fmtCount(cur.value(mModel, "table", "prefix16")), ""}},
		viewRow{"signers", []string{fmtCount(cur.value(mModel, "table", "signer")), ""}},
		viewRow{"evicted (tables full)", []string{rt(mEvicted), tot(mEvicted)}},
		viewRow{"newcomer factor", []string{fmtScore(cur.value(mNewcomer)), ""}},
		viewRow{"learning batches", []string{rt(mEvents, "event", "model_updates"), tot(mEvents, "event", "model_updates")}},
		viewRow{"longest update", []string{fmtSeconds(cur.value(mLearn)), ""}},
	)
	groups = append(groups, md)

	// Rows toward Postgres.
	db := viewGroup{title: "database rows", cols: []string{"/s", "total"}}
	db.rows = append(db.rows,
		ev("offered by the loop", "rows_offered"),
		viewRow{"written", []string{rt(mDBRows, "outcome", "written"), tot(mDBRows, "outcome", "written")}},
		viewRow{"spooled", []string{rt(mDBRows, "outcome", "spooled"), tot(mDBRows, "outcome", "spooled")}},
		viewRow{"dropped (spool full)", []string{rt(mDBRows, "outcome", "dropped"), tot(mDBRows, "outcome", "dropped")}},
		ev("dropped (hand-off full)", "rows_dropped"),
		viewRow{"in spool", []string{fmtCount(cur.value(mSpoolRows)), fmtBytes(cur.value(mSpool))}},
		viewRow{"connected", []string{fmtBool(cur.value(mDBConn)), ""}},
		viewRow{"errors", []string{rt(mDBErrs), tot(mDBErrs)}},
	)
	groups = append(groups, db)

	// Peers: is the validator on the other end of each channel?
	// A channel whose file was shrunk under the mapping shows "FAULT"
	// until it is rejoined.
	pe := viewGroup{title: "peers", cols: []string{"joined", "alive", "lost/s", "faults"}, labelWidth: peerLabelWidth}
	for _, ch := range channelOrder(cur.labelValues(mJoined, "channel")) {
		joined := fmtBool(cur.value(mJoined, "channel", ch))
		if v, ok := cur.value(mFaulted, "channel", ch); ok && v != 0 {
			joined = "FAULT"
		}
		pe.rows = append(pe.rows, viewRow{ch, []string{
			joined,
			fmtBool(cur.value(mAlive, "channel", ch)),
			fmtRate(rate(prev, cur, mSkipped, "channel", ch)),
			fmtCount(cur.value(mFaults, "channel", ch)),
		}})
	}
	if len(pe.rows) == 0 {
		pe.rows = append(pe.rows, viewRow{"channels", []string{missing, missing, missing, missing}})
	}
	groups = append(groups, pe)

	// Pack mode and anything newer than this top: every series shown
	// generically, counters as a rate and a total, gauges as a value.
	if g := genericGroup("pack mode", prev, cur, func(n string) bool { return strings.HasPrefix(n, packPrefix) }, packPrefix); len(g.rows) > 0 {
		groups = append(groups, g)
	}
	other := func(n string) bool {
		return strings.HasPrefix(n, "qos_") && !strings.HasPrefix(n, packPrefix) && !known[n]
	}
	if g := genericGroup("other qos metrics", prev, cur, other, "qos_"); len(g.rows) > 0 {
		groups = append(groups, g)
	}
	return groups
}

// channelOrder puts the channels top knows in the daemon's visiting order
// (packet channels first), then any others by name.
func channelOrder(names []string) []string {
	rank := func(n string) int {
		for i, c := range channels.Table {
			if c.Name == n {
				return i
			}
		}
		return len(channels.Table)
	}
	out := append([]string(nil), names...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// maxGenericRows bounds a generic group: more would not fit any screen.
const maxGenericRows = 64

// genericGroup shows every series of the families pick selects.
func genericGroup(title string, prev, cur *sample, pick func(string) bool, trim string) viewGroup {
	g := viewGroup{title: title, cols: []string{"/s or now", "total"}}
	if cur == nil {
		return g
	}
	var names []string
	for n := range cur.fams {
		if pick(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		f := cur.fams[n]
		pts := append([]point(nil), f.points...)
		sort.Slice(pts, func(i, j int) bool { return labelString(pts[i].labels) < labelString(pts[j].labels) })
		for _, p := range pts {
			if len(g.rows) == maxGenericRows {
				g.rows = append(g.rows, viewRow{"… more series", []string{"", ""}})
				return g
			}
			label := strings.TrimPrefix(n, trim)
			if ls := labelString(p.labels); ls != "" {
				label += " " + ls
			}
			if f.counter {
				g.rows = append(g.rows, viewRow{label, []string{fmtRate(rateKey(prev, cur, n, labelKey(p.labels))), fmtCount(p.v, true)}})
			} else {
				g.rows = append(g.rows, viewRow{label, []string{fmtScore(p.v, true), ""}})
			}
		}
	}
	return g
}

// labelString renders labels as v1,v2 in label-name order.
func labelString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = labels[k]
	}
	return strings.Join(vals, ",")
}

// si renders v with a k/M/G suffix and three significant digits.
func si(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return missing
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e4:
		return trimFloat(v/1e3) + "k"
	case a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	default:
		return trimFloat(v)
	}
}

func trimFloat(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func fmtCount(v float64, ok bool) string {
	if !ok {
		return missing
	}
	return si(v)
}

func fmtRate(v float64, ok bool) string {
	if !ok {
		return missing
	}
	if v != 0 && math.Abs(v) < 10 && v != math.Trunc(v) {
		return trimFloat(v)
	}
	return si(math.Round(v))
}

func fmtPct(v float64, ok bool) string {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return missing
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func fmtBool(v float64, ok bool) string {
	if !ok {
		return missing
	}
	if v != 0 {
		return "yes"
	}
	return "no"
}

func fmtSeconds(v float64, ok bool) string {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return missing
	}
	return time.Duration(v * float64(time.Second)).Round(time.Microsecond).String()
}

func fmtBytes(v float64, ok bool) string {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return missing
	}
	const unit = 1024
	if v < unit {
		return fmt.Sprintf("%.0f B", v)
	}
	exp, d := 0, v/unit
	for d >= unit && exp < 4 {
		d /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", d, "KMGTP"[exp])
}

func fmtScore(v float64, ok bool) string {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return missing
	}
	a := math.Abs(v)
	if a != 0 && (a < 0.01 || a >= 1e6) {
		return fmt.Sprintf("%.3g", v)
	}
	return si(v)
}
