package channels

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Child processes re-run this test binary with QOS_CHANNELS_CHILD set to a
// role; TestMain runs the role instead of the tests. The other variables
// say which channel to use.
const (
	envRole     = "QOS_CHANNELS_CHILD"
	envDir      = "QOS_CHANNELS_DIR"
	envPrefix   = "QOS_CHANNELS_PREFIX"
	envHuge     = "QOS_CHANNELS_HUGE" // hugetlbfs dir: use huge pages
	envKind     = "QOS_CHANNELS_KIND" // packet, meta or signature
	envCapacity = "QOS_CHANNELS_CAPACITY"
	envCount    = "QOS_CHANNELS_COUNT"
	envThrottle = "QOS_CHANNELS_THROTTLE" // "1": never overrun the consumer
)

// childName is the channel the cross-process tests share.
const childName = "xp"

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		if err := runChild(role); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childConfig is what a child reads from its environment.
type childConfig struct {
	o        Options
	kind     string
	capacity uint64
	count    uint64
	throttle bool
}

func readChildConfig() (childConfig, error) {
	cfg := childConfig{
		o:        Options{ShmDir: os.Getenv(envDir), Prefix: os.Getenv(envPrefix)},
		kind:     os.Getenv(envKind),
		throttle: os.Getenv(envThrottle) == "1",
	}
	if d := os.Getenv(envHuge); d != "" {
		cfg.o.HugePages, cfg.o.HugetlbfsDir = true, d
	}
	var err error
	if cfg.capacity, err = strconv.ParseUint(os.Getenv(envCapacity), 10, 64); err != nil {
		return cfg, fmt.Errorf("%s: %w", envCapacity, err)
	}
	if s := os.Getenv(envCount); s != "" {
		if cfg.count, err = strconv.ParseUint(s, 10, 64); err != nil {
			return cfg, fmt.Errorf("%s: %w", envCount, err)
		}
	}
	return cfg, nil
}

func runChild(role string) error {
	cfg, err := readChildConfig()
	if err != nil {
		return err
	}
	var out string
	run := func(packet, meta, sig func() (string, error)) {
		withKind(cfg.kind,
			func() { out, err = packet() },
			func() { out, err = meta() },
			func() { out, err = sig() })
	}
	switch role {
	case "produce":
		run(func() (string, error) { return childProduce[Packet](cfg) },
			func() (string, error) { return childProduce[RemainingMeta](cfg) },
			func() (string, error) { return childProduce[Signature](cfg) })
	case "consume":
		run(func() (string, error) { return childConsume[Packet](cfg) },
			func() (string, error) { return childConsume[RemainingMeta](cfg) },
			func() (string, error) { return childConsume[Signature](cfg) })
	case "join", "create", "inspect":
		out = childOpen(role, cfg)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

// childProduce waits for the consumer's heartbeat, then pushes count
// records numbered 0..count-1.
func childProduce[R Record](cfg childConfig) (string, error) {
	s := specFor[R](childName, cfg.capacity)
	p, err := OpenProducer[R](cfg.o, s)
	if err != nil {
		return "", err
	}
	defer p.Close()
	p.Beat() // tell the parent this process has joined
	deadline := time.Now().Add(20 * time.Second)
	for !p.ConsumerAlive() {
		if time.Now().After(deadline) {
			return "", errors.New("consumer never beat")
		}
		time.Sleep(100 * time.Microsecond)
	}
	expired := stalled(p)
	var r R
	for i := range cfg.count {
		fill(&r, i)
		if !cfg.throttle {
			p.Push(&r)
		} else if !p.pushThrottled(&r, expired) {
			return "", fmt.Errorf("consumer stopped reading at record %d", i)
		}
	}
	p.Sync()
	return fmt.Sprintf("ok pushed=%d", cfg.count), nil
}

// stalled returns a stop function for pushThrottled: true once the
// consumer's head has not moved for 10 seconds.
func stalled[R Record](p *Producer[R]) func() bool {
	last, moved := p.headNow(), time.Now()
	return func() bool {
		if h := p.headNow(); h != last {
			last, moved = h, time.Now()
			return false
		}
		return time.Since(moved) > 10*time.Second
	}
}

// childConsume joins, beats, and reads until count records are accounted
// for, checking each one.
func childConsume[R Record](cfg childConfig) (string, error) {
	c, err := OpenConsumer[R](cfg.o, specFor[R](childName, cfg.capacity))
	if err != nil {
		return "", err
	}
	defer c.Close()
	n, err := consumeAll(c, cfg.count, 20*time.Second)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ok read=%d skipped=%d", n, c.Skipped()), nil
}

// consumeAll pops until read+skipped reaches count, beating when idle,
// and checks every record: whole, and numbered by its position.
func consumeAll[R Record](c *Consumer[R], count uint64, timeout time.Duration) (uint64, error) {
	var r R
	deadline := time.Now().Add(timeout)
	for spins := 0; c.Read()+c.Skipped() < count; spins++ {
		if !c.Pop(&r) {
			c.Beat()
			if spins&255 == 0 && time.Now().After(deadline) {
				return c.Read(), fmt.Errorf("timeout: read %d skipped %d of %d", c.Read(), c.Skipped(), count)
			}
			continue
		}
		seq, err := seqOf(&r)
		if err != nil {
			return c.Read(), err
		}
		if want := c.Read() + c.Skipped() - 1; seq != want {
			return c.Read(), fmt.Errorf("record seq %d, want %d", seq, want)
		}
	}
	return c.Read(), nil
}

// childOpen tries one operation and prints the sentinel it failed with,
// or "ok".
func childOpen(role string, cfg childConfig) string {
	s := specFor[Packet](childName, cfg.capacity)
	var err error
	switch role {
	case "join":
		var c *Consumer[Packet]
		if c, err = OpenConsumer[Packet](cfg.o, s); err == nil {
			c.Close()
		}
	case "create":
		var p *Producer[Packet]
		if p, err = OpenProducer[Packet](cfg.o, s); err == nil {
			p.Close()
		}
	case "inspect":
		_, err = Inspect(cfg.o, s)
	}
	return sentinelName(err)
}

// sentinelName names the sentinel err matches, "ok" for nil.
func sentinelName(err error) string {
	if err == nil {
		return "ok"
	}
	for _, x := range []struct {
		name string
		err  error
	}{
		{"ErrNotExist", ErrNotExist}, {"ErrNotInitialised", ErrNotInitialised}, {"ErrCorrupt", ErrCorrupt},
		{"ErrCapacity", ErrCapacity}, {"ErrFileSize", ErrFileSize}, {"ErrPermission", ErrPermission},
		{"ErrHugePages", ErrHugePages}, {"ErrHugetlbfs", ErrHugetlbfs}, {"ErrGroup", ErrGroup},
		{"ErrInvalid", ErrInvalid}, {"ErrMap", ErrMap},
	} {
		if errors.Is(err, x.err) {
			return x.name + ": " + err.Error()
		}
	}
	return "other: " + err.Error()
}

// child is a running child process.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startChild starts this test binary in role with o and the extra
// variables. cred, if not nil, runs it as another user.
func startChild(tb testing.TB, role string, o Options, kind string, capacity, count uint64, throttle bool, cred *syscall.Credential) *child {
	tb.Helper()
	exe := os.Args[0]
	if cred != nil {
		exe = executableCopy(tb)
	}
	ch := &child{cmd: exec.Command(exe)}
	ch.cmd.Dir = "/"
	ch.cmd.Env = append(os.Environ(),
		envRole+"="+role, envDir+"="+o.ShmDir, envPrefix+"="+o.Prefix, envKind+"="+kind,
		envCapacity+"="+strconv.FormatUint(capacity, 10), envCount+"="+strconv.FormatUint(count, 10))
	// Under the race detector a process sleeps a second at exit unless
	// told not to; the children have no reason to.
	ch.cmd.Env = append(ch.cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if o.HugePages {
		ch.cmd.Env = append(ch.cmd.Env, envHuge+"="+o.HugetlbfsDir)
	}
	if throttle {
		ch.cmd.Env = append(ch.cmd.Env, envThrottle+"=1")
	}
	if cred != nil {
		ch.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	ch.cmd.Stdout, ch.cmd.Stderr = &ch.stdout, &ch.stderr
	if err := ch.cmd.Start(); err != nil {
		tb.Fatalf("start child %s: %v", role, err)
	}
	tb.Cleanup(func() {
		if ch.cmd.ProcessState == nil {
			_ = ch.cmd.Process.Kill()
			_ = ch.cmd.Wait()
		}
	})
	return ch
}

// wait waits for the child and returns its stdout, failing the test if it
// failed.
func (ch *child) wait(tb testing.TB) string {
	tb.Helper()
	if err := ch.cmd.Wait(); err != nil {
		tb.Fatalf("child failed: %v\nstdout: %s\nstderr: %s", err, ch.stdout.String(), ch.stderr.String())
	}
	return strings.TrimSpace(ch.stdout.String())
}

// executableCopy copies the test binary where any user may run it (the
// build directory is private to its owner).
func executableCopy(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "qos-channels-exe-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "channels.test")
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// crossProcess runs one direction for one record type.
func crossProcess[R Record](t *testing.T, o Options, kind string, childProduces, throttle bool) {
	const capacity = 1024
	count := uint64(20_000)
	if kind == "packet" {
		count = 10_000
	}
	s := specFor[R](childName, capacity)
	if _, err := Create(o, s); err != nil {
		t.Fatal(err)
	}
	if childProduces {
		c, err := OpenConsumer[R](o, s)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ch := startChild(t, "produce", o, kind, capacity, count, throttle, nil)
		read, err := consumeAll(c, count, 30*time.Second)
		if err != nil {
			t.Fatalf("parent consumer: %v (child stderr: %s)", err, ch.stderr.String())
		}
		out := ch.wait(t)
		t.Logf("child %s; parent read %d skipped %d", out, read, c.Skipped())
		if throttle && (read != count || c.Skipped() != 0) {
			t.Fatalf("throttled transfer lost records: read %d skipped %d", read, c.Skipped())
		}
		return
	}
	p, err := OpenProducer[R](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ch := startChild(t, "consume", o, kind, capacity, count, throttle, nil)
	deadline := time.Now().Add(20 * time.Second)
	for !p.ConsumerAlive() {
		if time.Now().After(deadline) || ch.cmd.ProcessState != nil {
			t.Fatalf("child consumer never beat: %s", ch.stderr.String())
		}
		time.Sleep(100 * time.Microsecond)
	}
	expired := stalled(p)
	var r R
	for i := range count {
		fill(&r, i)
		if !throttle {
			p.Push(&r)
		} else if !p.pushThrottled(&r, expired) {
			t.Fatalf("child stopped reading at %d: %s", i, ch.stderr.String())
		}
	}
	p.Sync()
	out := ch.wait(t)
	t.Logf("child %s", out)
	if !strings.HasPrefix(out, "ok read=") {
		t.Fatalf("child: %q", out)
	}
	if throttle && out != fmt.Sprintf("ok read=%d skipped=0", count) {
		t.Fatalf("throttled transfer lost records: child %q", out)
	}
}

// TestCrossProcess moves every record type between two processes, in
// both directions, lossless (throttled on the head) and flat out (lossy:
// every record that arrives is whole and accounted for).
func TestCrossProcess(t *testing.T) {
	for _, kind := range recordKinds {
		for _, dir := range []struct {
			name          string
			childProduces bool
		}{{"child-produces", true}, {"child-consumes", false}} {
			for _, throttle := range []bool{true, false} {
				name := kind + "/" + dir.name + "/lossless"
				if !throttle {
					name = kind + "/" + dir.name + "/flat-out"
				}
				t.Run(name, func(t *testing.T) {
					o := testOptions(t)
					withKind(kind,
						func() { crossProcess[Packet](t, o, kind, dir.childProduces, throttle) },
						func() { crossProcess[RemainingMeta](t, o, kind, dir.childProduces, throttle) },
						func() { crossProcess[Signature](t, o, kind, dir.childProduces, throttle) })
				})
			}
		}
	}
}
