package shaq

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/solqos/qos/channels/shm"
)

// Cross-process tests re-run this test binary as the peer: QOS_SHAQ_PEER
// names the role, the queue file arrives as fd 3 (exec's ExtraFiles, as a
// received SCM_RIGHTS fd would), QOS_SHAQ_FORMAT / _N / _ELEM give the
// queue. The peer prints "ready" once joined and exits 0 when every
// element checked out.
func TestMain(m *testing.M) {
	if role := os.Getenv("QOS_SHAQ_PEER"); role != "" {
		if err := runPeer(role); err != nil {
			fmt.Fprintln(os.Stderr, "peer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const peerElem = 40

// fill writes element i: its number and its complement at both ends, so a
// torn or stale read shows.
func fill(s []byte, i uint64) {
	binary.LittleEndian.PutUint64(s, i)
	binary.LittleEndian.PutUint64(s[len(s)-8:], ^i)
}

func check(s []byte, want uint64) error {
	a, b := binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[len(s)-8:])
	if a != want || b != ^want {
		return fmt.Errorf("element %d: got %d / %#x", want, a, b)
	}
	return nil
}

func runPeer(role string) error {
	f, _ := strconv.Atoi(os.Getenv("QOS_SHAQ_FORMAT"))
	n, _ := strconv.ParseUint(os.Getenv("QOS_SHAQ_N"), 10, 64)
	r, err := shm.MapFile(os.NewFile(3, "peer-queue"))
	if err != nil {
		return err
	}
	defer r.Close()
	switch role {
	case "consume":
		c, err := NewConsumer(r, Format(f), peerElem)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		return consumeN(c, n)
	case "produce":
		p, err := NewProducer(r, Format(f), peerElem)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		return produceN(p, n)
	case "wait-one":
		// Sleep in Wait (on V4: in FUTEX_WAIT) until the parent commits one
		// element; fail if that takes anywhere near the timeout.
		c, err := NewConsumer(r, Format(f), peerElem)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		start := time.Now()
		if !c.Wait(20 * time.Second) {
			return fmt.Errorf("no wake in 20s")
		}
		if d := time.Since(start); d > 10*time.Second {
			return fmt.Errorf("woken after %v: the wake was lost", d)
		}
		s, ok := c.TryRead()
		if !ok {
			return fmt.Errorf("woken without an element")
		}
		return check(s, 42)
	case "mpmc-consume":
		c, err := NewMPMCConsumer(r, peerElem)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		for i := uint64(0); i < n; {
			s, ok := c.TryRead()
			if !ok {
				if !c.Wait(10 * time.Second) {
					return fmt.Errorf("timed out at %d", i)
				}
				continue
			}
			if err := check(s, i); err != nil {
				return err
			}
			i++
		}
		c.Finalize()
		return c.Err()
	}
	return fmt.Errorf("unknown role %q", role)
}

func produceN(p *Producer, n uint64) error {
	deadline := time.Now().Add(60 * time.Second)
	for i := uint64(0); i < n; {
		s, ok := p.Reserve()
		if !ok {
			p.Commit()
			p.Sync()
			if time.Now().After(deadline) {
				return fmt.Errorf("producer stuck at %d", i)
			}
			continue
		}
		fill(s, i)
		i++
		if i%16 == 0 {
			p.Commit()
		}
	}
	p.Commit()
	return p.Err()
}

func consumeN(c *Consumer, n uint64) error {
	for i := uint64(0); i < n; {
		s, ok := c.TryRead()
		if !ok {
			c.Finalize()
			if !c.Wait(10 * time.Second) {
				return fmt.Errorf("timed out waiting for element %d", i)
			}
			continue
		}
		if err := check(s, i); err != nil {
			return err
		}
		i++
	}
	c.Finalize()
	return c.Err()
}

// spawn starts the peer with r's file as fd 3 and waits for its "ready".
func spawn(t testing.TB, role string, f Format, n int, r *shm.Region) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "QOS_SHAQ_PEER="+role, "QOS_SHAQ_FORMAT="+strconv.Itoa(int(f)), "QOS_SHAQ_N="+strconv.Itoa(n))
	cmd.ExtraFiles = []*os.File{r.File()}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("peer %s: %q, %v", role, line, err)
	}
	return cmd
}

func TestCrossProcess(t *testing.T) {
	const n = 100_000
	for _, f := range formats {
		t.Run(f.String()+"/go-produces", func(t *testing.T) {
			r := newRegion(t, MinimumFileSize(f, peerElem, 256))
			if err := Create(r, f, peerElem); err != nil {
				t.Fatal(err)
			}
			p, err := NewProducer(r, f, peerElem)
			if err != nil {
				t.Fatal(err)
			}
			cmd := spawn(t, "consume", f, n, r)
			if err := produceN(p, n); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("consumer process: %v", err)
			}
		})
		t.Run(f.String()+"/go-consumes", func(t *testing.T) {
			r := newRegion(t, MinimumFileSize(f, peerElem, 256))
			if err := Create(r, f, peerElem); err != nil {
				t.Fatal(err)
			}
			c, err := NewConsumer(r, f, peerElem)
			if err != nil {
				t.Fatal(err)
			}
			cmd := spawn(t, "produce", f, n, r)
			if err := consumeN(c, n); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("producer process: %v", err)
			}
		})
	}
	t.Run("mpmc", func(t *testing.T) {
		r := newRegion(t, MinimumMPMCFileSize(peerElem, 256))
		if err := CreateMPMC(r, peerElem); err != nil {
			t.Fatal(err)
		}
		p, err := NewMPMCProducer(r, peerElem)
		if err != nil {
			t.Fatal(err)
		}
		cmd := spawn(t, "mpmc-consume", V4, n, r)
		for i := uint64(0); i < n; {
			s, ok := p.Reserve()
			if !ok {
				time.Sleep(time.Microsecond)
				continue
			}
			fill(s, i)
			p.Commit()
			i++
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("consumer process: %v", err)
		}
	})
}

// TestCrossProcessFutexWake: a consumer process asleep on the shaq 4.0
// futex is woken by this process's Commit (FUTEX_WAKE without the private
// flag; a private wake would not reach another process).
func TestCrossProcessFutexWake(t *testing.T) {
	r := newRegion(t, MinimumFileSize(V4, peerElem, 16))
	if err := Create(r, V4, peerElem); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(r, V4, peerElem)
	if err != nil {
		t.Fatal(err)
	}
	cmd := spawn(t, "wait-one", V4, 1, r)
	// Wait until the peer has registered as a waiter (it spins first).
	deadline := time.Now().Add(10 * time.Second)
	for p.q.waiters.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("peer never registered as a waiter")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let it reach FUTEX_WAIT
	start := time.Now()
	s, _ := p.Reserve()
	fill(s, 42)
	p.Commit()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("waiting process: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("peer took %v to wake", d)
	}
}

// BenchmarkCrossProcess: messages/s from this process to a consumer
// process (40-byte elements, commit every 16, 4096-slot queue).
func BenchmarkCrossProcess(b *testing.B) {
	for _, f := range formats {
		b.Run(f.String(), func(b *testing.B) {
			r := newRegion(b, MinimumFileSize(f, peerElem, 4096))
			if err := Create(r, f, peerElem); err != nil {
				b.Fatal(err)
			}
			p, err := NewProducer(r, f, peerElem)
			if err != nil {
				b.Fatal(err)
			}
			cmd := spawn(b, "consume", f, b.N, r)
			b.ReportAllocs()
			b.ResetTimer()
			if err := produceN(p, uint64(b.N)); err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatalf("consumer process: %v", err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkInProcess: one goroutine produces, another consumes.
func BenchmarkInProcess(b *testing.B) {
	for _, f := range formats {
		b.Run(f.String(), func(b *testing.B) {
			_, p, c := newQueue(b, f, peerElem, 4096)
			done := make(chan error)
			b.ReportAllocs()
			b.ResetTimer()
			go func() { done <- consumeN(c, uint64(b.N)) }()
			if err := produceN(p, uint64(b.N)); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
