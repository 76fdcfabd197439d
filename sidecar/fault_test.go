package sidecar

import (
	"bytes"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

// faultsOn turns memory faults into panics on the test goroutine, as Run
// does on the loop's, for the rest of the test.
func faultsOn(t *testing.T) {
	t.Helper()
	old := debug.SetPanicOnFault(true)
	t.Cleanup(func() { debug.SetPanicOnFault(old) })
}

func truncateChannel(t *testing.T, o channels.Options, name string, size int64) {
	t.Helper()
	if err := os.Truncate(o.Path(name), size); err != nil {
		t.Fatal(err)
	}
}

// push writes n fresh transactions numbered from first into p.
func push(t *testing.T, p *channels.Producer[channels.Packet], first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		x := tx{payer: payerN(i), sig: sigN(i), limit: 10_000, price: 1000, nonce: uint64(i)}
		pk := x.packet(t, ipN(i))
		p.Push(&pk)
	}
	p.Sync()
}

// errorLines returns the log lines at level ERROR that mention channel.
func errorLines(logs *bytes.Buffer, channel string) int {
	n := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, "channel="+channel) {
			n++
		}
	}
	return n
}

// TestChannelFaultsSurvived: a peer shrinks tpu_to_qos (read by the loop)
// to nothing and qos_to_sig (written by it) to one page. Each faults once,
// is logged once as an error naming it and counted; the other channels
// are served meanwhile; once the files are valid again the next peer
// check joins them and packets flow through both again.
func TestChannelFaultsSurvived(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	faultsOn(t)
	var mono int64
	step := func() int {
		mono += int64(time.Millisecond)
		return h.s.guardedStep(mono, mono)
	}
	steps := func(n int) {
		for range n {
			step()
		}
	}

	push(t, h.tpu, 0, 4)
	push(t, h.fwd, 100, 4)
	steps(5)
	if got := len(h.drain()); got != 8 || h.s.snap.Received[0] != 4 || h.s.snap.Received[1] != 4 {
		t.Fatalf("before the faults: sent %d, received %v; want 8, 4 and 4", got, h.s.snap.Received)
	}

	// tpu_to_qos shrinks to nothing: the loop faults reading its tail.
	truncateChannel(t, h.opts, channels.TPU, 0)
	push(t, h.fwd, 200, 4)
	steps(5)
	if !h.s.faults.on[0] || h.s.snap.Faults[0] != 1 || h.s.snap.Counters[ChannelFaults] != 1 {
		t.Fatalf("tpu fault not recorded: on %v, faults %v, counter %d", h.s.faults.on, h.s.snap.Faults, h.s.snap.Counters[ChannelFaults])
	}
	if h.s.snap.Received[1] != 8 {
		t.Fatalf("fwd_to_qos not served after the tpu fault: received %d, want 8", h.s.snap.Received[1])
	}
	if got := len(h.drain()); got != 4 {
		t.Fatalf("sent %d after the tpu fault, want fwd's 4", got)
	}

	// qos_to_sig shrinks to one page: the loop faults writing its third
	// slot (slots 2 and on lie past byte 4096).
	h.out.Close() // this process's reader must not touch it either
	truncateChannel(t, h.opts, channels.QoSToSig, 4096)
	push(t, h.fwd, 300, 40)
	steps(20)
	if !h.s.faults.on[chanOut] || h.s.snap.Faults[chanOut] != 1 || h.s.snap.Counters[ChannelFaults] != 2 {
		t.Fatalf("qos_to_sig fault not recorded: on %v, faults %v", h.s.faults.on, h.s.snap.Faults)
	}
	queued := h.s.queue.Len()
	push(t, h.fwd, 400, 4)
	steps(5)
	if h.s.snap.Received[1] != 52 || h.s.queue.Len() != queued+4 {
		t.Fatalf("inputs not served while qos_to_sig is dropped: fwd received %d (want 52), queue %d (want %d)",
			h.s.snap.Received[1], h.s.queue.Len(), queued+4)
	}
	if errorLines(&logs, channels.TPU) != 1 || errorLines(&logs, channels.QoSToSig) != 1 {
		t.Fatalf("want one error per faulted channel:\n%s", logs.String())
	}
	for _, want := range []string{h.opts.Path(channels.TPU), h.opts.Path(channels.QoSToSig), "memory fault", "the file is now 0 bytes", "the file is now 4096 bytes"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log does not say %q:\n%s", want, logs.String())
		}
	}

	// Not valid yet: the peer checks say so once per channel.
	h.s.checkPeers()
	h.s.checkPeers()
	if n := strings.Count(logs.String(), "faulted channel not valid yet"); n != 2 {
		t.Fatalf("%d not-valid-yet warnings, want one per channel:\n%s", n, logs.String())
	}

	// The peer restores both: qos_to_sig keeps its header, tpu_to_qos is
	// initialised again by its producer.
	truncateChannel(t, h.opts, channels.QoSToSig, spec(channels.QoSToSig).MinSize())
	truncateChannel(t, h.opts, channels.TPU, spec(channels.TPU).MinSize())
	tpu := openProducer[channels.Packet](t, h.opts, channels.TPU)
	if !tpu.Created() {
		t.Fatal("the zeroed tpu_to_qos was not initialised again")
	}
	h.s.checkPeers()
	if h.s.faults.on != [numChannels]bool{} || h.s.snap.Counters[Rejoins] != 2 {
		t.Fatalf("not rejoined: faulted %v, rejoins %d", h.s.faults.on, h.s.snap.Counters[Rejoins])
	}
	out, err := channels.OpenConsumer[channels.Packet](h.opts, spec(channels.QoSToSig))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close() })
	h.out = out
	push(t, tpu, 500, 4)
	push(t, h.fwd, 600, 4)
	for range 100 {
		if step() == 0 && h.s.queue.Len() == 0 {
			break
		}
	}
	if h.s.snap.Received[0] != 8 {
		t.Fatalf("tpu_to_qos received %d after the rejoin, want 8", h.s.snap.Received[0])
	}
	if got := len(h.drain()); got != queued+4+8 {
		t.Fatalf("sent %d after qos_to_sig was rejoined, want the %d queued", got, queued+4+8)
	}
	if h.s.snap.Counters[ChannelFaults] != 2 {
		t.Fatalf("faults %d after the rejoins, want still 2", h.s.snap.Counters[ChannelFaults])
	}
	h.s.publish(mono)
	if sn := h.s.snap; !sn.Joined[0] || sn.Faulted != [numChannels]bool{} {
		t.Fatalf("snapshot after the rejoin: joined %v, faulted %v", sn.Joined, sn.Faulted)
	}
}

// TestFaultAtShutdown: a file found shrunk only when the channels are
// closed is logged and counted, and the close reports no error.
func TestFaultAtShutdown(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	truncateChannel(t, h.opts, channels.SigToQoS, 0)
	if err := h.s.closeAll(); err != nil {
		t.Fatalf("closeAll: %v", err)
	}
	if h.s.snap.Counters[ChannelFaults] != 1 || !strings.Contains(logs.String(), h.opts.Path(channels.SigToQoS)) {
		t.Fatalf("fault at shutdown not counted (%d) or logged:\n%s", h.s.snap.Counters[ChannelFaults], logs.String())
	}
}

// TestOtherPanicsGoOn: the fault guard only takes memory faults in channel
// mappings; any other panic, a nil dereference included, goes on.
func TestOtherPanicsGoOn(t *testing.T) {
	h := newHarness(t, nil)
	faultsOn(t)
	var nilPtr *int
	for name, f := range map[string]func(){
		"value": func() { panic("boom") },
		"nil":   func() { _ = *nilPtr },
	} {
		r := func() (r any) {
			defer func() { r = recover() }()
			h.s.guarded(f)
			return nil
		}()
		if r == nil {
			t.Errorf("%s: panic swallowed", name)
		}
	}
	if h.s.snap.Counters[ChannelFaults] != 0 || h.s.faults.on != [numChannels]bool{} {
		t.Fatal("a channel detached for a panic that was not its fault")
	}
}

// BenchmarkStepGuard prices the fault guard around a loop step: an idle
// step (every channel polled, nothing there, the cheapest iteration the
// loop makes) bare and guarded.
func BenchmarkStepGuard(b *testing.B) {
	h := newHarness(b, nil)
	for _, guarded := range []bool{false, true} {
		name := "bare"
		if guarded {
			name = "guarded"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				if guarded {
					h.s.guardedStep(int64(i), int64(i))
				} else {
					h.s.step(int64(i), int64(i))
				}
			}
		})
	}
}
