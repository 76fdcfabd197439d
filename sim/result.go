package sim

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one Run measured. Values are in lamports; rates in
// packets per second; times in microseconds.
type Result struct {
	Seed      int64   `json:"seed"`
	HashSeed  uint64  `json:"hash_seed"`
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	BucketS   float64 `json:"bucket_s"`
	SlotS     float64 `json:"slot_s"`
	// SlotCUBudget and SigverifyPPS are the scheduler's and sigverify's
	// capacities the run had.
	SlotCUBudget uint64 `json:"slot_cu_budget"`
	SigverifyPPS uint64 `json:"sigverify_pps"`

	InPackets  uint64  `json:"in_packets"`  // produced on tpu/fwd/re1/re2
	OutPackets uint64  `json:"out_packets"` // received on qos_to_sig
	InPPS      float64 `json:"in_pps"`
	OutPPS     float64 `json:"out_pps"`

	// What became of the output.
	Duplicates       uint64 `json:"duplicates"`        // by packet hash; must be 0
	SigverifyDropped uint64 `json:"sigverify_dropped"` // beyond sigverify's capacity
	FailedSigverify  uint64 `json:"failed_sigverify"`
	Verified         uint64 `json:"verified"`
	Foreign          uint64 `json:"foreign"` // verified but not made by the simulator
	Included         uint64 `json:"included"`
	Unattributed     uint64 `json:"unattributed"` // from an address no agent uses
	Skipped          uint64 `json:"skipped"`      // lost to overrun of qos_to_sig

	Value uint64 `json:"value"` // fees of included transactions
	// Oracle is the most value sigverify at full capacity and the
	// scheduler could have taken from the traffic produced: the same bar
	// for every policy.
	Oracle            uint64 `json:"oracle"`
	ValueAfterWarmup  uint64 `json:"value_after_warmup"`
	OracleAfterWarmup uint64 `json:"oracle_after_warmup"`

	// AttackerShare and AttackerShareAfterWarmup are the attackers' share
	// of the packets received on qos_to_sig, over the whole run and after
	// Warmup.
	AttackerShare            float64 `json:"attacker_share"`
	AttackerShareAfterWarmup float64 `json:"attacker_share_after_warmup"`
	// AttackerWork and AttackerWorkAfterWarmup are the attackers' share of
	// sigverify's work: the packets whose signature it checked (not the
	// duplicates it dropped nor those beyond its capacity).
	AttackerWork            float64 `json:"attacker_work"`
	AttackerWorkAfterWarmup float64 `json:"attacker_work_after_warmup"`
	// WorstHonest is the honest agent with the lowest ValueOut/ValueIn
	// (of those offering any value) and WorstHonestShare that ratio.
	WorstHonest      string  `json:"worst_honest"`
	WorstHonestShare float64 `json:"worst_honest_share"`
	// HonestOffered is the honest agents' unique valid transactions;
	// HonestDropShare the part of them that never verified at sigverify
	// (held back by the sidecar, beyond sigverify's capacity, lost).
	HonestOffered   uint64  `json:"honest_offered"`
	HonestDropShare float64 `json:"honest_drop_share"`
	// HonestP50Us and HonestP99Us are quantiles of the delay from
	// production to sigverify over every honest transaction offered, a
	// transaction that never got there counting as infinitely late: -1
	// when the quantile falls among those.
	HonestP50Us float64 `json:"honest_p50_us"`
	HonestP99Us float64 `json:"honest_p99_us"`

	LatencySamples uint64  `json:"latency_samples"`
	LatencyP50Us   float64 `json:"latency_p50_us"` // produce → qos_to_sig
	LatencyP99Us   float64 `json:"latency_p99_us"`
	ProducerLagUs  float64 `json:"producer_lag_max_us"` // how late the simulator produced

	Agents []AgentResult `json:"agents"`
	// Per bucket of BucketS seconds.
	InPPSSeries         []float64 `json:"in_pps_series"`
	OutPPSSeries        []float64 `json:"out_pps_series"`
	AttackerShareSeries []float64 `json:"attacker_share_series"`
}

// AgentResult is one agent's part of a Result.
type AgentResult struct {
	Name       string   `json:"name"`
	Attacker   bool     `json:"attacker"`
	InPackets  uint64   `json:"in_packets"`
	OutPackets uint64   `json:"out_packets"`
	Offered    uint64   `json:"offered"`  // unique valid transactions produced
	Included   uint64   `json:"included"` // transactions the scheduler included
	ValueIn    uint64   `json:"value_in"` // fees of the unique valid transactions produced
	ValueOut   uint64   `json:"value_out"`
	InSeries   []uint64 `json:"in_series"`
	OutSeries  []uint64 `json:"out_series"`
}

// NamedResult labels a Result with the policy it ran under.
type NamedResult struct {
	Name   string `json:"name"`
	Result Result `json:"result"`
}

// OracleShare returns Value/Oracle (0 when the oracle is 0).
func (r *Result) OracleShare() float64 { return share(r.Value, r.Oracle) }

// OracleShareAfterWarmup returns ValueAfterWarmup/OracleAfterWarmup.
func (r *Result) OracleShareAfterWarmup() float64 {
	return share(r.ValueAfterWarmup, r.OracleAfterWarmup)
}

func (r *recorder) result() Result {
	cfg := r.cfg
	secs := cfg.Duration.Seconds()
	bsecs := cfg.Bucket.Seconds()
	res := Result{
		Seed: cfg.Seed, HashSeed: r.seed,
		DurationS: secs, WarmupS: cfg.Warmup.Seconds(), BucketS: bsecs, SlotS: cfg.SlotDuration.Seconds(),
		SlotCUBudget: cfg.SlotCUBudget, SigverifyPPS: cfg.SigverifyPPS,
		InPackets: r.produced, OutPackets: r.received,
		InPPS: float64(r.produced) / secs, OutPPS: float64(r.received) / secs,
		Duplicates: r.duplicates, SigverifyDropped: r.sigDropped, FailedSigverify: r.failed,
		Verified: r.verified, Foreign: r.foreign, Included: r.nIncluded,
		Unattributed: r.unattributed, Skipped: r.skipped,
		Value: r.value, Oracle: r.oracle, ValueAfterWarmup: r.valueAfter, OracleAfterWarmup: r.oracleAfter,
		AttackerShare:            share(r.attackOut, r.received),
		AttackerShareAfterWarmup: share(r.attackAfter, r.outAfter),
		AttackerWork:             share(r.attackWork, r.work),
		AttackerWorkAfterWarmup:  share(r.attackWorkAf, r.workAfter),
		WorstHonestShare:         1,
		LatencySamples:           r.lat.n,
		LatencyP50Us:             float64(r.lat.quantile(0.50)) / 1e3,
		LatencyP99Us:             float64(r.lat.quantile(0.99)) / 1e3,
		ProducerLagUs:            float64(r.prodLagMax) / 1e3,
		InPPSSeries:              make([]float64, r.nBuckets),
		OutPPSSeries:             make([]float64, r.nBuckets),
		AttackerShareSeries:      make([]float64, r.nBuckets),
	}
	// The last bucket may be partial.
	width := func(b int) float64 {
		end := min(time.Duration(b+1)*cfg.Bucket, cfg.Duration)
		return (end - time.Duration(b)*cfg.Bucket).Seconds()
	}
	for i := range cfg.Agents {
		a := AgentResult{Name: cfg.Agents[i].Name, Attacker: r.attacker[i],
			OutPackets: r.outAgent[i], Offered: r.offered[i], Included: r.included[i],
			ValueIn: r.valueIn[i], ValueOut: r.valueOut[i],
			InSeries: make([]uint64, r.nBuckets), OutSeries: make([]uint64, r.nBuckets)}
		for b := 0; b < r.nBuckets; b++ {
			a.InSeries[b] = r.prodIn[b*r.nAgents+i]
			a.OutSeries[b] = r.out[b*r.nAgents+i]
			a.InPackets += a.InSeries[b]
		}
		res.Agents = append(res.Agents, a)
		if !a.Attacker {
			res.HonestOffered += a.Offered
			if a.ValueIn > 0 {
				if sh := share(a.ValueOut, a.ValueIn); res.WorstHonest == "" || sh < res.WorstHonestShare {
					res.WorstHonest, res.WorstHonestShare = a.Name, sh
				}
			}
		}
	}
	if res.WorstHonest == "" {
		res.WorstHonestShare = 0
	}
	res.HonestDropShare = 1 - share(r.honestLat.n, res.HonestOffered)
	if res.HonestOffered == 0 {
		res.HonestDropShare = 0
	}
	res.HonestP50Us = honestQuantileUs(&r.honestLat, 0.50, res.HonestOffered)
	res.HonestP99Us = honestQuantileUs(&r.honestLat, 0.99, res.HonestOffered)
	for b := 0; b < r.nBuckets; b++ {
		w := width(b)
		if w <= 0 {
			res.InPPSSeries = res.InPPSSeries[:b]
			res.OutPPSSeries = res.OutPPSSeries[:b]
			res.AttackerShareSeries = res.AttackerShareSeries[:b]
			for i := range res.Agents {
				res.Agents[i].InSeries = res.Agents[i].InSeries[:b]
				res.Agents[i].OutSeries = res.Agents[i].OutSeries[:b]
			}
			break
		}
		var in, out, att uint64
		for i := range res.Agents {
			in += r.prodIn[b*r.nAgents+i]
			o := r.out[b*r.nAgents+i]
			out += o
			if r.attacker[i] {
				att += o
			}
		}
		res.InPPSSeries[b] = float64(in) / w
		res.OutPPSSeries[b] = float64(out) / w
		res.AttackerShareSeries[b] = share(att, out)
	}
	return res
}

// honestQuantileUs is the q-quantile (µs) of h over total transactions,
// those without a sample counting as infinitely late (-1 then).
func honestQuantileUs(h *histogram, q float64, total uint64) float64 {
	if total == 0 || h.n == 0 {
		return -1
	}
	rank := uint64(q*float64(total) + 0.999999)
	if rank > h.n {
		return -1
	}
	return float64(h.quantileRank(max(rank, 1))) / 1e3
}

// tableHeader and tableRow are the comparison table's columns, shared by
// the text table and the HTML report.
var tableHeader = []string{"policy", "value (SOL)", "oracle (SOL)", "% oracle", "% oracle after warm-up",
	"spam pkts run/after", "spam sigverify work run/after", "worst honest (value share)",
	"honest never verified", "honest p50", "honest p99", "failed sigverify", "duplicates", "in pps", "out pps"}

func tableRow(nr *NamedResult) []string {
	r := &nr.Result
	return []string{nr.Name,
		fmt.Sprintf("%.4f", float64(r.Value)/1e9), fmt.Sprintf("%.4f", float64(r.Oracle)/1e9),
		pct(r.OracleShare()), pct(r.OracleShareAfterWarmup()),
		pct(r.AttackerShare) + " / " + pct(r.AttackerShareAfterWarmup),
		pct(r.AttackerWork) + " / " + pct(r.AttackerWorkAfterWarmup),
		fmt.Sprintf("%s (%s)", r.WorstHonest, pct(r.WorstHonestShare)),
		pct(r.HonestDropShare), fmtLate(r.HonestP50Us), fmtLate(r.HonestP99Us),
		fmt.Sprint(r.FailedSigverify), fmt.Sprint(r.Duplicates),
		fmt.Sprintf("%.0f", r.InPPS), fmt.Sprintf("%.0f", r.OutPPS)}
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

// fmtLate prints a latency in µs, or "never" for -1 (the quantile falls
// among transactions that never reached sigverify).
func fmtLate(us float64) string {
	if us < 0 {
		return "never"
	}
	return fmtMicros(us)
}

// WriteTable writes one row per run comparing them: value captured and its
// share of the full-capacity oracle, the attackers' share of output and of
// sigverify's work, the worst-served honest agent, how many honest
// transactions never verified and their latency, failed sigverify and
// duplicates in output, packet rates.
func WriteTable(w io.Writer, runs []NamedResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t")+"\t")
	for i := range runs {
		fmt.Fprintln(tw, strings.Join(tableRow(&runs[i]), "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write comparison table: %w", err)
	}
	if len(runs) > 0 {
		r := &runs[0].Result
		_, err := fmt.Fprintf(w, "value: fees of included transactions. oracle: per %v slot, the best choice of valid transactions that sigverify at full capacity (%s) could take within %d CUs, the same for every policy. spam: attacker agents; sigverify work: packets whose signature it checked. honest latency counts transactions never verified as infinitely late. warm-up %v of %v.\n",
			secs(r.SlotS), sigverifyCap(r.SigverifyPPS), r.SlotCUBudget, secs(r.WarmupS), secs(r.DurationS))
		if err != nil {
			return fmt.Errorf("write comparison table: %w", err)
		}
	}
	for _, nr := range runs {
		if lag := nr.Result.ProducerLagUs; lag >= behindWarnUs {
			_, err := fmt.Fprintf(w, "%s: the simulator fell up to %s behind its traffic schedule: this machine produced %.0f packets/s, less than the agents ask for; the rates above are what it managed.\n",
				nr.Name, fmtMicros(lag), nr.Result.InPPS)
			if err != nil {
				return fmt.Errorf("write comparison table: %w", err)
			}
		}
	}
	return nil
}

// behindWarnUs is how far behind its schedule the producer may fall (µs)
// before the table says so.
const behindWarnUs = 100_000

// secs turns seconds back into a duration for printing.
func secs(s float64) time.Duration { return time.Duration(s * 1e9).Round(time.Millisecond) }

func sigverifyCap(pps uint64) string {
	if pps == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d/s", pps)
}

// fmtMicros prints a duration given in microseconds with a readable unit.
func fmtMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.1fms", us/1e3)
	}
	return fmt.Sprintf("%.0fµs", us)
}

// ScenarioRun is one policy's run of one scenario of the library.
type ScenarioRun struct {
	Scenario string `json:"scenario"`
	NamedResult
}

// WriteScenarioTable writes one row per scenario and policy: value against
// the full-capacity oracle over the run and after warm-up, the attackers'
// share of sigverify's work after warm-up, the worst-served honest agent's
// share of the value it offered, and the honest transactions never
// verified.
func WriteScenarioTable(w io.Writer, runs []ScenarioRun) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tpolicy\t% oracle\t% oracle after warm-up\tspam sigverify work after warm-up\tworst honest value share\thonest never verified\thonest p99\t")
	for _, sr := range runs {
		r := &sr.Result
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s (%s)\t%s\t%s\t\n", sr.Scenario, sr.Name,
			pct(r.OracleShare()), pct(r.OracleShareAfterWarmup()), pct(r.AttackerWorkAfterWarmup),
			pct(r.WorstHonestShare), r.WorstHonest, pct(r.HonestDropShare), fmtLate(r.HonestP99Us))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write scenario table: %w", err)
	}
	return nil
}
