package sidecar

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

// harness plays the validator around a Sidecar opened on fresh channels in
// /dev/shm under a unique prefix. Tests drive the loop with step, send and
// friends on their own clock.
type harness struct {
	t      testing.TB
	opts   channels.Options
	tpu    *channels.Producer[channels.Packet]
	fwd    *channels.Producer[channels.Packet]
	sig    *channels.Producer[channels.Packet]
	sch    *channels.Producer[channels.RemainingMeta]
	status *channels.Producer[channels.Signature]
	out    *channels.Consumer[channels.Packet]
	s      *Sidecar
}

func testOptions(tb testing.TB) channels.Options {
	tb.Helper()
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		tb.Fatal(err)
	}
	o := channels.Options{ShmDir: channels.DefaultShmDir, Prefix: "qostest-" + hex.EncodeToString(r[:]) + "-"}
	tb.Cleanup(func() {
		for _, s := range channels.Table {
			_ = channels.Remove(o, s)
		}
	})
	return o
}

// createChannels creates all eight channels, as `qos-cli init` does.
func createChannels(tb testing.TB, o channels.Options) {
	tb.Helper()
	for _, s := range channels.Table {
		if _, err := channels.Create(o, s); err != nil {
			tb.Fatal(err)
		}
	}
}

func testConfig(o channels.Options) Config {
	cfg := DefaultConfig()
	cfg.Channels = o
	cfg.Seed = 0x5eed
	cfg.TargetPPS = 10_000 // 10 per 1 ms tick
	cfg.QueueCapacity = 1024
	cfg.PartialCapacity = 1 << 16
	cfg.RecentCapacity = 1 << 12
	cfg.LogInterval = 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func newHarness(tb testing.TB, edit func(*Config)) *harness {
	tb.Helper()
	o := testOptions(tb)
	createChannels(tb, o)
	cfg := testConfig(o)
	if edit != nil {
		edit(&cfg)
	}
	h := &harness{t: tb, opts: o}
	h.tpu = openProducer[channels.Packet](tb, o, channels.TPU)
	h.fwd = openProducer[channels.Packet](tb, o, channels.FWD)
	h.sig = openProducer[channels.Packet](tb, o, channels.SigToQoS)
	h.sch = openProducer[channels.RemainingMeta](tb, o, channels.SchToQoS)
	h.status = openProducer[channels.Signature](tb, o, channels.TxStatusCache)
	s, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	h.s = s
	tb.Cleanup(func() { _ = s.closeChannels() })
	out, err := channels.OpenConsumer[channels.Packet](o, spec(channels.QoSToSig))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = out.Close() })
	h.out = out
	return h
}

func openProducer[R channels.Record](tb testing.TB, o channels.Options, name string) *channels.Producer[R] {
	tb.Helper()
	p, err := channels.OpenProducer[R](o, spec(name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// drain collects everything the sidecar has sent so far.
func (h *harness) drain() []channels.Packet {
	var got []channels.Packet
	var p channels.Packet
	for h.out.Pop(&p) {
		got = append(got, p)
	}
	return got
}

// sendAll runs the pacer on a clock advancing one tick per call until the
// queue is empty, and returns what reached qos_to_sig.
func (h *harness) sendAll(mono *int64) []channels.Packet {
	for h.s.queue.Len() > 0 {
		*mono += int64(time.Millisecond)
		h.s.send(*mono)
	}
	return h.drain()
}
