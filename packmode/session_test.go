package packmode

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
)

// syncBuf is a log sink safe for the loop goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSessionLostReconnects: the validator goes silent (no progress);
// the runner declares the session lost, says the validator fell back to
// its own scheduler, frees what it held, and logs on again to the next
// validator on the same socket.
func TestSessionLostReconnects(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "scheduler_bindings.ipc")
	txs := story(200, 5)
	_, v1, ready1 := serveValidatorAt(t, sock, txs)
	var logs syncBuf
	cfg := DefaultConfig()
	cfg.Policy = PolicyFeeOnly
	cfg.ProgressTimeout = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r, err := NewRunner(RunConfig{Socket: sock, Profile: bindings.Profile41, Logon: testLogon(), Loop: cfg,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	if err := <-ready1; err != nil {
		t.Fatal(err)
	}
	// Not leader: everything fed stays queued, then the validator stops.
	v1.publishProgress()
	v1.feed(len(txs))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "session lost") {
		if time.Now().After(deadline) {
			t.Fatalf("no session loss logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "fallen back to its own scheduler") || !strings.Contains(logs.String(), "no progress message") {
		t.Errorf("loss log does not say why or what the validator does:\n%s", logs.String())
	}
	v1.audit()
	if len(v1.handed) != 0 || len(v1.bad) != 0 {
		t.Errorf("after the loss: %d payloads not freed, errors %v", len(v1.handed), v1.bad)
	}
	// A new validator on the same socket: the runner logs on again.
	if err := removeSocket(sock); err != nil {
		t.Fatal(err)
	}
	_, v2, ready2 := serveValidatorAt(t, sock, txs)
	select {
	case err := <-ready2:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no second logon:\n%s", logs.String())
	}
	v2.publishProgress()
	for {
		if st, up := r.Stats(); up && st.Sessions == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second session not up")
		}
		v2.publishProgress()
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for done := false; !done; {
		select {
		case err := <-runErr:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			done = true
		case <-time.After(time.Millisecond):
			v2.publishProgress()
			v2.work()
		}
	}
}

// removeSocket removes a dead listener's socket file so another may bind.
func removeSocket(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
