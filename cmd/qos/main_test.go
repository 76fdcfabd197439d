package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/sidecar"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(t *testing.T) sidecar.Config {
	t.Helper()
	cfg := sidecar.DefaultConfig()
	cfg.Channels = channels.Options{ShmDir: t.TempDir(), Prefix: "q-"}
	cfg.Seed = 1
	cfg.PartialCapacity, cfg.RecentCapacity, cfg.QueueCapacity = 1024, 1024, 64
	cfg.Logger = quiet()
	return cfg
}

// TestOpenWhenReadyWaits: a daemon started before the validator created
// its channels joins them once they appear.
func TestOpenWhenReadyWaits(t *testing.T) {
	cfg := testConfig(t)
	go func() {
		time.Sleep(300 * time.Millisecond)
		for _, s := range channels.Table {
			if _, err := channels.Create(cfg.Channels, s); err != nil {
				t.Error(err)
			}
		}
	}()
	start := time.Now()
	s, err := openWhenReady(context.Background(), cfg, 10*time.Second, quiet())
	if err != nil {
		t.Fatalf("openWhenReady: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("joined after %v, before the channels existed", d)
	}
}

func TestOpenWhenReadyTimesOut(t *testing.T) {
	cfg := testConfig(t)
	_, err := openWhenReady(context.Background(), cfg, 300*time.Millisecond, quiet())
	if !errors.Is(err, channels.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist after the timeout", err)
	}
}

func TestDropPrivileges(t *testing.T) {
	if err := dropPrivileges("no-such-user-qos", quiet()); err == nil {
		t.Fatal("unknown user accepted")
	}
	if os.Geteuid() != 0 {
		if err := dropPrivileges("", quiet()); err != nil {
			t.Fatalf("nothing to drop as a normal user, got %v", err)
		}
	}
}

// TestFlagErrors: bad settings are refused with a message, before any
// channel is touched.
func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"qos"}, // --xxhash-seed is required
		{"qos", "--xxhash-seed", "1", "--policy", "best"},
		{"qos", "--xxhash-seed", "1", "--unknown-prior", "2"},
		{"qos", "--xxhash-seed", "1", "--model-pending-ttl", "0s"},
		{"qos", "--xxhash-seed", "1", "--model-pending-max", "-1"},
		{"qos", "--xxhash-seed", "1", "--log-level", "loud"},
	} {
		a := app()
		a.Writer, a.ErrWriter = io.Discard, io.Discard
		if err := a.Run(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestServeMetrics: --metrics-addr serves the loop's metrics, the Go
// runtime's and the process's in Prometheus' text format while the loop
// runs, and a busy address is a clear error.
func TestServeMetrics(t *testing.T) {
	cfg := testConfig(t)
	for _, s := range channels.Table {
		if _, err := channels.Create(cfg.Channels, s); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sidecar.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, addr, err := serveMetrics("127.0.0.1:0", s, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	wants := []string{
		`qos_events_total{event="admitted"}`,
		`qos_received_packets_total{channel="tpu_to_qos"}`,
		"qos_loop_busy_seconds_total",
		"qos_loop_max_stall_seconds",
		"go_goroutines",
		"process_resident_memory_bytes",
	}
	// The loop's figures appear with its first snapshot: scrape until
	// they are all there, or 20 s have passed.
	var body []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %v, status %d", err, resp.StatusCode)
		}
		all := true
		for _, want := range wants {
			all = all && strings.Contains(string(body), want)
		}
		if all || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s after 20 s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if _, _, err := serveMetrics(addr.String(), s, nil, quiet()); err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Fatalf("second server on %s: %v, want an error naming --metrics-addr", addr, err)
	}
}

// TestFlagsReadEnv: every daemon flag reads QOS_ and its name (derived
// by cliflags.WithEnv, as each flag spelled it out before).
func TestFlagsReadEnv(t *testing.T) {
	flags := newDaemonFlags().list()
	if len(flags) < 30 {
		t.Fatalf("only %d flags", len(flags))
	}
	for _, f := range flags {
		name := f.Names()[0]
		if got := f.(cli.DocGenerationFlag).GetEnvVars(); !slices.Equal(got, cliflags.Env(name)) {
			t.Errorf("--%s: env %v, want %v", name, got, cliflags.Env(name))
		}
	}
}
