package metastore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/solqos/qos/model"
	"github.com/solqos/qos/schema/schematest"
)

// BenchmarkReplay writes 1 000 000 rows, one in seven a penalty (reporting
// the sink's rate), then
// measures replay: rows/s in this process, and the peak RSS (VmHWM) of a
// child process replaying the first 250 000 rows and one replaying all
// 1 000 000, which must be about equal.
//
//	go test -run XXX -bench Replay -benchtime 3x ./metastore
func BenchmarkReplay(b *testing.B) {
	d := newTestDB(b, "replaybench")
	base := time.Now().Add(-time.Hour).UnixNano() / 1000 * 1000
	const n = 1_000_000
	start := time.Now()
	writeRows(b, d, base, n, mixedRow)
	sinkRate := n / time.Since(start).Seconds()
	if _, err := d.conn.Exec(context.Background(), "ANALYZE completed_tx"); err != nil {
		b.Fatal(err)
	}
	p := model.DefaultParams()
	b.ReportAllocs()
	b.ResetTimer()
	var elapsed time.Duration
	for b.Loop() {
		t0 := time.Now()
		_, rows, err := Replay(context.Background(), d.conn, ReplayOptions{Params: p})
		if err != nil || rows != n {
			b.Fatalf("replayed %d rows: %v", rows, err)
		}
		elapsed += time.Since(t0)
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(sinkRate, "sink-rows/s")
	b.StopTimer()
	for _, rows := range []int64{250_000, n} {
		to := base + rows/2*1000 // trafficRow puts two rows per µs
		if rows == n {
			to = base + n*1000
		}
		got, hwm, rate := replayChild(b, d.URL, to)
		if got != rows {
			b.Fatalf("child replayed %d rows, want %d", got, rows)
		}
		b.ReportMetric(float64(hwm), fmt.Sprintf("VmHWM-KiB-%dk", rows/1000))
		b.Logf("child replay of %d rows: %.0f rows/s, peak RSS %d KiB", got, rate, hwm)
	}
}

// replayChild runs TestReplayChild in a fresh process and returns its rows,
// peak RSS (KiB) and rate.
func replayChild(b *testing.B, url string, to int64) (rows, hwmKiB int64, rate float64) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplayChild$", "-test.v")
	cmd.Env = append(os.Environ(), "QOS_REPLAY_CHILD_URL="+url, "QOS_REPLAY_CHILD_TO="+strconv.FormatInt(to, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(line, "REPLAYCHILD "); ok {
			if _, err := fmt.Sscanf(rest, "rows=%d hwm=%d rate=%g", &rows, &hwmKiB, &rate); err != nil {
				b.Fatalf("child output %q: %v", line, err)
			}
			return rows, hwmKiB, rate
		}
	}
	b.Fatalf("child printed no result:\n%s", out)
	return 0, 0, 0
}

// TestReplayChild is BenchmarkReplay's child process; it does nothing
// unless QOS_REPLAY_CHILD_URL is set.
func TestReplayChild(t *testing.T) {
	url := os.Getenv("QOS_REPLAY_CHILD_URL")
	if url == "" {
		t.Skip("run by BenchmarkReplay")
	}
	to, err := strconv.ParseInt(os.Getenv("QOS_REPLAY_CHILD_TO"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConnConfig(url, "qos-replay-child")
	if err != nil {
		t.Fatal(err)
	}
	conn := schematest.Connect(t, cfg)
	start := time.Now()
	_, rows, err := Replay(context.Background(), conn, ReplayOptions{Params: model.DefaultParams(), To: time.Unix(0, to)})
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(rows) / time.Since(start).Seconds()
	fmt.Printf("REPLAYCHILD rows=%d hwm=%d rate=%.0f\n", rows, vmHWM(t), rate)
}

// vmHWM reads this process's peak resident set size in KiB.
func vmHWM(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
