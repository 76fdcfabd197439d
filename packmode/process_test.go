package packmode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solqos/qos/model"
)

// TestPackProcess is the end-to-end run: the test validator in this
// process and the real `qos pack` binary in another, for a few seconds of
// traffic; then SIGTERM. The binary must exit 0 with the model saved, and
// the validator's audit must show every payload and response array freed
// exactly once and no conflicting batches.
func TestPackProcess(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "qos")
	build := exec.Command("go", "build", "-o", bin, "github.com/solqos/qos/cmd/qos")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building qos: %v\n%s", err, out)
	}
	txs := story(20000, 2)
	socket, v, ready := serveValidator(t, txs)
	modelFile := filepath.Join(dir, "model.bin")
	cmd := exec.Command(bin, "pack", "--bindings-socket", socket, "--agave-abi", "4.1", "--workers", "2",
		"--allocator-size", "67108864", "--tpu-to-pack-capacity", "4096", "--progress-capacity", "4096",
		"--worker-queue-capacity", "64", "--queue-capacity", "2048", "--model-file", modelFile,
		"--min-observations", "1", "--log-format", "json", "--once")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-exited:
		t.Fatalf("qos pack exited before logging on: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no logon\n%s", stderr.String())
	}
	// A few seconds of traffic: 20 000 transactions at ~5 000/s.
	start := time.Now()
	step := 0
	for time.Since(start) < 5*time.Second {
		step++
		if step%20 == 0 {
			v.newSlot(step%100 != 0)
		}
		v.publishProgress()
		v.feed(5)
		v.work()
		v.audit()
		time.Sleep(500 * time.Microsecond)
	}
	fed := v.next
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	stopBy := time.Now().Add(15 * time.Second)
	for done := false; !done; {
		select {
		case waitErr = <-exited:
			done = true
		case <-time.After(300 * time.Microsecond):
			if time.Now().After(stopBy) {
				t.Fatalf("qos pack did not stop on SIGTERM\n%s", stderr.String())
			}
			v.publishProgress()
			v.work()
			v.audit()
		}
	}
	v.work()
	v.audit()
	if waitErr != nil {
		t.Fatalf("qos pack: %v\n%s", waitErr, stderr.String())
	}
	// The final log line carries the counters.
	var final map[string]any
	sc := bufio.NewScanner(bytes.NewReader(stderr.Bytes()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"qos pack stopped"`) {
			if err := json.Unmarshal(sc.Bytes(), &final); err != nil {
				t.Fatal(err)
			}
		}
	}
	if final == nil {
		t.Fatalf("no final counters\n%s", stderr.String())
	}
	for _, err := range v.bad {
		t.Error(err)
	}
	if v.conflicts != 0 {
		t.Errorf("%d lock conflicts", v.conflicts)
	}
	// Payloads still unread in tpu_to_pack at SIGTERM are the validator's.
	unread := fed - int(final["received"].(float64))
	if len(v.handed) != unread {
		t.Errorf("%d payloads not freed, %d of them unread in tpu_to_pack", len(v.handed), unread)
	}
	if len(v.resp) != 0 {
		t.Errorf("%d response arrays not freed", len(v.resp))
	}
	if final["held"].(float64) != 0 || final["free_errors"].(float64) != 0 {
		t.Errorf("final counters: %v", final)
	}
	var included int
	for i, n := range v.executed {
		if n > 1 {
			t.Errorf("tx %d included %d times", i, n)
		}
		included += n
	}
	if float64(included) != final["included"].(float64) {
		t.Errorf("validator included %d, qos counted %v", included, final["included"])
	}
	m, err := model.Load(modelFile)
	if err != nil {
		t.Fatalf("model not saved: %v", err)
	}
	if st := m.Stats(); st.Signers == 0 {
		t.Errorf("saved model learnt nothing: %+v", st)
	}
	if _, err := os.Stat(modelFile); err != nil {
		t.Fatal(err)
	}
	t.Logf("fed %d, qos final %v; validator reasons %v", fed, final, v.reasons)
}
