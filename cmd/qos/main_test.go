package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
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
		{"qos", "--xxhash-seed", "1", "--alpha", "2"},
		{"qos", "--xxhash-seed", "1", "--log-level", "loud"},
	} {
		a := app()
		a.Writer, a.ErrWriter = io.Discard, io.Discard
		if err := a.Run(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
