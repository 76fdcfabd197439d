package sidecar

import (
	"bytes"
	"github.com/solqos/qos/admit"
	"log/slog"
	"strings"
	"testing"

	"github.com/solqos/qos/channels"
)

// TestHeartbeatStopAndResume: a producer whose heartbeat stops is reported
// once, and its resumption is reported once.
func TestHeartbeatStopAndResume(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	beatAll := func() {
		h.tpu.Beat()
		h.fwd.Beat()
		h.sig.Beat()
		h.sch.Beat()
		h.status.Beat()
	}
	beatAll()
	h.s.checkPeers() // re1/re2 have no producer: reported stopped
	if !strings.Contains(logs.String(), "channels=re1_to_qos,re2_to_qos") {
		t.Fatalf("silent relayer channels not reported:\n%s", logs.String())
	}
	logs.Reset()
	beatAll()
	h.s.checkPeers()
	if logs.Len() != 0 {
		t.Fatalf("unexpected report while producers beat:\n%s", logs.String())
	}
	h.s.checkPeers() // nobody beat since the last check
	h.s.checkPeers() // still nobody: no second report
	if n := strings.Count(logs.String(), "no producer heartbeat"); n != 1 {
		t.Fatalf("%d stop reports, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "tpu_to_qos") || h.s.snap.ProducerAlive[0] {
		t.Fatalf("tpu_to_qos not reported stopped:\n%s", logs.String())
	}
	logs.Reset()
	h.tpu.Beat()
	h.s.checkPeers()
	if !strings.Contains(logs.String(), "producer heartbeat resumed") || !strings.Contains(logs.String(), "channels=tpu_to_qos") {
		t.Fatalf("resumption not reported:\n%s", logs.String())
	}
	if !h.s.snap.ProducerAlive[0] {
		t.Fatal("tpu_to_qos not marked alive after it resumed")
	}
}

// TestRejoinRecreatedChannel: when the validator recreates a channel file
// (a restart), the loop joins the new file and reads what is written there.
func TestRejoinRecreatedChannel(t *testing.T) {
	h := newHarness(t, nil)
	old := h.s.in[0]
	if err := h.tpu.Close(); err != nil {
		t.Fatal(err)
	}
	s := spec(channels.TPU)
	if err := channels.Remove(h.opts, s); err != nil {
		t.Fatal(err)
	}
	h.s.pub.files <- h.s.statFiles()
	h.s.checkPeers()
	if h.s.in[0] != old {
		t.Fatal("consumer dropped while its file is absent; it should keep the old mapping")
	}
	tpu := openProducer[channels.Packet](t, h.opts, channels.TPU) // the new file
	h.s.pub.files <- h.s.statFiles()
	h.s.checkPeers()
	if h.s.in[0] == old {
		t.Fatal("recreated tpu_to_qos not rejoined")
	}
	if got := h.s.snap.Counters[Rejoins]; got != 1 {
		t.Fatalf("rejoins = %d, want 1", got)
	}
	x := tx{payer: payerN(1), sig: sigN(1), limit: 10_000, price: 5, nonce: 1}
	p := x.packet(t, ipN(1))
	tpu.Push(&p)
	tpu.Sync()
	h.s.step(0, 0)
	if h.s.snap.Received[0] != 1 || h.s.snap.Admission.Events[admit.EventAdmitted] != 1 {
		t.Fatalf("after rejoin received %d, admitted %d; want 1, 1", h.s.snap.Received[0], h.s.snap.Admission.Events[admit.EventAdmitted])
	}
}
