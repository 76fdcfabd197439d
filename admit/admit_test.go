package admit

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
	"github.com/solqos/qos/sigcache"
)

// computeBudgetID is ComputeBudget111111111111111111111111111111.
var computeBudgetID = func() [32]byte {
	b, _ := hex.DecodeString("0306466fe5211732ffecadba72c39be7bc8ce5bbc5f7126b2c439b3a40000000")
	return [32]byte(b)
}()

// legacyTx returns a legacy transaction: one signature (sig repeated), fee
// payer payer, SetComputeUnitLimit(limit), SetComputeUnitPrice(price) and
// one instruction whose data is nonce.
func legacyTx(sig, payer byte, limit uint32, price, nonce uint64) []byte {
	var d []byte
	d = append(d, 1)
	for range 64 {
		d = append(d, sig)
	}
	d = append(d, 1, 0, 2, 3)
	p := [32]byte{payer}
	d = append(d, p[:]...)
	d = append(d, computeBudgetID[:]...)
	prog := [32]byte{9, 9, 9}
	d = append(d, prog[:]...)
	var blockhash [32]byte
	d = append(d, blockhash[:]...)
	d = append(d, 3, 1, 0, 5, 2)
	d = binary.LittleEndian.AppendUint32(d, limit)
	d = append(d, 1, 0, 9, 3)
	d = binary.LittleEndian.AppendUint64(d, price)
	d = append(d, 2, 0, 8)
	return binary.LittleEndian.AppendUint64(d, nonce)
}

// txOfPacket reads a packet record as the sidecar does.
func txOfPacket(p *channels.Packet) Tx {
	data, addr, flags := score.TxOf(p)
	return Tx{Data: data, Addr: addr, Flags: Flags(flags)}
}

// TestFlagsAreRecordFlags: admission hands its flags to
// score.Evaluator.InspectTx, which reads the packet records' bits.
func TestFlagsAreRecordFlags(t *testing.T) {
	for _, c := range []struct {
		f    Flags
		want uint8
	}{
		{Discard, channels.FlagDiscard},
		{Forwarded, channels.FlagForwarded},
	} {
		if uint8(c.f) != c.want {
			t.Fatalf("flag %#x, packet record flag %#x", c.f, c.want)
		}
	}
}

// FuzzJudgeMatchesEvaluator: Judge, on a packet's bytes, address and
// flags read as the sidecar reads them, rejects, prices and hashes as
// score.Evaluator.Evaluate on the record: the verdict, the Info and the
// packet hash the validator's result is joined by.
func FuzzJudgeMatchesEvaluator(f *testing.F) {
	f.Add(legacyTx(1, 2, 10_000, 5, 1), uint64(0), uint8(0), []byte{10, 0, 0, 1}, uint8(0))
	f.Add(legacyTx(1, 2, 10_000, 5, 1), uint64(0), uint8(1), []byte{0xfe, 0x80, 15: 1}, uint8(0))
	f.Add(legacyTx(1, 2, 10_000, 5, 1), uint64(0), uint8(0), []byte{10, 0, 0, 1}, uint8(Discard))
	f.Add(legacyTx(1, 2, 10_000, 5, 1), uint64(0), uint8(7), []byte{10, 0, 0, 1}, uint8(0))
	f.Add(legacyTx(1, 2, 10_000, 5, 1), uint64(5000), uint8(0), []byte{10, 0, 0, 1}, uint8(0))
	f.Add([]byte{0, 1, 2}, uint64(0), uint8(0), []byte{1, 2, 3, 4}, uint8(FromStakedNode))
	// A fee-only admitter: Judge does not read the model, and an empty
	// queue of this capacity takes any score, so every accepted packet
	// gets its keys.
	a := New(Params{Seed: 0x5eed, Policy: PolicyFeeOnly}, score.NewQueue(4, time.Second), NewPartialStore(16), sigcache.New(16, 1), model.New(model.DefaultParams()))
	e := score.NewEvaluator(0x5eed)
	var p channels.Packet
	var d Decision
	var c Counters
	f.Fuzz(func(t *testing.T, data []byte, size uint64, tag uint8, addr []byte, flags uint8) {
		p = channels.Packet{}
		if !p.SetData(data) {
			return
		}
		if size != 0 {
			p.SetSize(size) // a size field the data does not back
		}
		p.SetAddr(netip.AddrFrom4([4]byte{1, 2, 3, 4}))
		p[channels.PacketDataSize+8] = tag
		copy(p[channels.PacketDataSize+9:channels.PacketDataSize+25], addr)
		p.SetFlags(flags)

		want, wr := e.Evaluate(&p)
		tx := txOfPacket(&p)
		keys := a.Judge(&tx, &d, 0, false, &c)
		if d.Reject != wr || keys != (wr == score.OK) {
			t.Fatalf("reject %v (keys %v), evaluator %v", d.Reject, keys, wr)
		}
		if wr != score.OK {
			if d.Verdict != Rejected {
				t.Fatalf("verdict %d for reject %v", d.Verdict, wr)
			}
			return
		}
		if d.Info != want || want.Hash != score.PacketHash(0x5eed, &p) {
			t.Fatalf("info %+v, evaluator %+v", d.Info, want)
		}
	})
}

// harness is an admitter with small tables of its own.
type harness struct {
	a       *Admitter
	queue   *score.Queue
	recent  *sigcache.Set
	model   *model.IPSigner
	c       Counters
	d       Decision
	penalty int
}

func newHarness(policy Policy, queueCap int) *harness {
	h := &harness{queue: score.NewQueue(queueCap, time.Second), recent: sigcache.New(64, 1), model: model.New(model.DefaultParams())}
	h.a = New(Params{Seed: 7, Policy: policy}, h.queue, NewPartialStore(64), h.recent, h.model)
	return h
}

// offer runs one transaction through Judge and Admit as the sidecar does,
// pushing a Queue verdict and applying penalties.
func (h *harness) offer(tb testing.TB, data []byte, addr netip.Addr, now int64) Verdict {
	tb.Helper()
	tx := Tx{Data: data, Addr: addr}
	h.a.Judge(&tx, &h.d, now, h.a.GateOpen(now), &h.c)
	h.apply(&tx)
	v := h.a.Admit(&tx, &h.d, now, &h.c)
	h.apply(&tx)
	if v == Queue {
		var p channels.Packet
		p.SetData(data)
		p.SetAddr(addr)
		h.c.Pushed(h.queue.Push(&p, h.d.Score, h.d.Info.Hash, h.d.SigKey, now))
	}
	return v
}

func (h *harness) apply(tx *Tx) {
	if h.d.Penalty == PenalizeUnparsable {
		h.model.Penalize(model.IPOf(tx.Addr), 0)
		h.penalty++
	}
}

func TestVerdicts(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	h := newHarness(PolicyModel, 2)
	good := legacyTx(1, 1, 10_000, 1_000_000, 1)
	f := func(name string, data []byte, addr netip.Addr, want Verdict) {
		t.Helper()
		if got := h.offer(t, data, addr, 0); got != want {
			t.Fatalf("%s: verdict %d, want %d (reject %v)", name, got, want, h.d.Reject)
		}
	}
	f("first", good, ip, Queue)
	f("again", good, ip, Duplicate)
	f("unparsable", []byte{0, 1, 2}, ip, Rejected)
	if h.penalty != 1 || h.c.Rejects[h.d.Reject] != 1 {
		t.Fatalf("penalties %d, rejects %v", h.penalty, h.c.Rejects)
	}
	f("no address", good, netip.Addr{}, Rejected)
	if h.d.Reject != score.RejectAddr || h.penalty != 1 {
		t.Fatalf("reject %v, penalties %d; want bad address, no new penalty", h.d.Reject, h.penalty)
	}
	confirmed := legacyTx(2, 2, 10_000, 1_000_000, 2)
	h.recent.Add((*[64]byte)(confirmed[1:65]))
	f("recently confirmed", confirmed, ip, RecentlyConfirmed)
	f("second", legacyTx(3, 3, 10_000, 2_000_000, 3), ip, Queue)
	f("low, queue full", legacyTx(4, 4, 200_000, 1, 4), ip, Low)
	ev := h.c.Events
	if ev[EventAdmitted] != 2 || ev[EventDuplicates] != 1 || ev[EventRecentlyConfirmed] != 1 || ev[EventRejectedLow] != 1 {
		t.Fatalf("events %v", ev)
	}
}

// TestGate: once the full queue refuses the best any transaction from a
// sunk IP could score, its transactions are gated unparsed, without a new
// penalty.
func TestGate(t *testing.T) {
	h := newHarness(PolicyModel, 1)
	spam := netip.MustParseAddr("66.66.66.66")
	for range 30 {
		h.offer(t, []byte{0, 1, 2}, spam, 0)
	}
	if v := h.offer(t, legacyTx(1, 1, 10_000, 1_000_000, 1), netip.MustParseAddr("10.0.0.1"), 0); v != Queue {
		t.Fatalf("honest packet: verdict %d", v)
	}
	pen := h.penalty
	if v := h.offer(t, []byte{0, 1, 2}, spam, 0); v != Gated {
		t.Fatalf("spam after the queue filled: verdict %d, want Gated", v)
	}
	if h.penalty != pen || h.c.Events[EventGated] != 1 {
		t.Fatalf("penalties %d -> %d, gated %d", pen, h.penalty, h.c.Events[EventGated])
	}
}

func TestJudgeAdmitAllocs(t *testing.T) {
	h := newHarness(PolicyModel, 1024)
	ip := netip.MustParseAddr("10.0.0.1")
	data := legacyTx(1, 1, 10_000, 1_000_000, 1)
	n := uint64(0)
	if a := testing.AllocsPerRun(2000, func() {
		n++
		binary.LittleEndian.PutUint64(data[len(data)-8:], n)
		data[1] = byte(n)
		h.offer(t, data, ip, int64(n))
	}); a != 0 {
		t.Fatalf("Judge and Admit allocate %v per transaction", a)
	}
}
