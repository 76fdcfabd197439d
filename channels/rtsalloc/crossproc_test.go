package rtsalloc

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
)

// The cross-process test re-runs this binary as the peer (QOS_RTSALLOC_PEER
// set): the allocator file arrives as fd 3 and a shaq queue as fd 4, as
// received SCM_RIGHTS fds would. The peer allocates blocks from its own
// slot, stamps them and sends their offsets; this process checks each
// stamp through its own mapping and frees the block (a remote free); the
// peer cleans its remote frees until it has seen all of them come back,
// and exits 0 when its slot holds nothing.
func TestMain(m *testing.M) {
	if os.Getenv("QOS_RTSALLOC_PEER") != "" {
		if err := runPeer(); err != nil {
			fmt.Fprintln(os.Stderr, "peer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const msgSize = 16 // offset u64, size u64

func runPeer() error {
	f, _ := strconv.Atoi(os.Getenv("QOS_RTSALLOC_FORMAT"))
	n, _ := strconv.Atoi(os.Getenv("QOS_RTSALLOC_N"))
	format := Format(f)
	ar, err := shm.MapFile(os.NewFile(3, "peer-allocator"))
	if err != nil {
		return err
	}
	defer ar.Close()
	qr, err := shm.MapFile(os.NewFile(4, "peer-queue"))
	if err != nil {
		return err
	}
	defer qr.Close()
	a, err := Join(ar, format, slotFor(format, 1))
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := shaq.NewProducer(qr, shaq.V4, msgSize)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	deadline := time.Now().Add(60 * time.Second)
	sent, back := 0, 0
	for back < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("sent %d, %d came back, live %d", sent, back, a.LiveBlocks())
		}
		back += a.CleanRemoteFrees(nil)
		if sent == n {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		size := 1 + (sent*97)%MaxSize
		off, ok := a.Allocate(size)
		if !ok {
			if a.Err() != nil {
				return a.Err()
			}
			p.Commit()
			continue // full until the other side frees
		}
		cs := ClassSize(classOf(size))
		stamp(a, off, cs, uint64(sent))
		for {
			s, ok := p.Reserve()
			if ok {
				binary.LittleEndian.PutUint64(s, off)
				binary.LittleEndian.PutUint64(s[8:], uint64(cs))
				break
			}
			p.Commit()
			p.Sync()
			back += a.CleanRemoteFrees(nil)
		}
		sent++
		if sent%8 == 0 || sent == n {
			p.Commit()
		}
	}
	if a.LiveBlocks() != 0 || a.Rejected() != 0 || a.Err() != nil {
		return fmt.Errorf("at exit: live %d, rejected %d, err %v", a.LiveBlocks(), a.Rejected(), a.Err())
	}
	return nil
}

func TestCrossProcess(t *testing.T) {
	const n = 20_000
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			ar := newAllocator(t, f, 2, 24)
			a := join(t, ar, f, slotFor(f, 0))
			qr, err := shm.Create("rtsalloc-offsets", shaq.MinimumFileSize(shaq.V4, msgSize, 1024), false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { qr.Close() })
			if err := shaq.Create(qr, shaq.V4, msgSize); err != nil {
				t.Fatal(err)
			}
			c, err := shaq.NewConsumer(qr, shaq.V4, msgSize)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "QOS_RTSALLOC_PEER=1", "QOS_RTSALLOC_FORMAT="+strconv.Itoa(int(f)), "QOS_RTSALLOC_N="+strconv.Itoa(n))
			cmd.ExtraFiles = []*os.File{ar.File(), qr.File()}
			cmd.Stderr = os.Stderr
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || line != "ready\n" {
				cmd.Process.Kill()
				t.Fatalf("peer: %q %v", line, err)
			}
			go func() { exited <- cmd.Wait() }()
			// Meanwhile this slot allocates and frees its own blocks, so
			// both processes contend for the global slab list.
			var mine []uint64
			for got := 0; got < n; {
				s, ok := c.TryRead()
				if !ok {
					c.Finalize()
					select {
					case err := <-exited:
						t.Fatalf("peer exited early after %d: %v", got, err)
					default:
					}
					c.Wait(10 * time.Millisecond)
					continue
				}
				off, cs := binary.LittleEndian.Uint64(s), int(binary.LittleEndian.Uint64(s[8:]))
				if !stamped(a, off, cs, uint64(got)) {
					t.Fatalf("block %d at %d: stamp lost across processes", got, off)
				}
				if err := a.Free(off); err != nil {
					t.Fatal(err)
				}
				got++
				if o, ok := a.Allocate(256 << (got % 5)); ok {
					mine = append(mine, o)
				}
				if len(mine) > 64 {
					for _, o := range mine {
						if err := a.Free(o); err != nil {
							t.Fatal(err)
						}
					}
					mine = mine[:0]
				}
			}
			c.Finalize()
			if err := <-exited; err != nil {
				t.Fatalf("peer: %v", err)
			}
			for _, o := range mine {
				if err := a.Free(o); err != nil {
					t.Fatal(err)
				}
			}
			global, err := invariants(a)
			if err != nil || global != a.NumSlabs() || a.Err() != nil {
				t.Fatalf("after both sides freed everything: %d of %d slabs free, %v, %v", global, a.NumSlabs(), err, a.Err())
			}
		})
	}
}
