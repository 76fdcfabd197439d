package handshake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
)

// roleNames lists the role of each fd in wire order for p and n workers.
func roleNames(p bindings.Profile, n int) []string {
	names := []string{"allocator", "tpu_to_pack", "progress_tracker"}
	if p.CheckQueues {
		names = append(names, "pack_to_check_worker", "check_worker_to_pack")
	}
	for i := 0; i < n; i++ {
		names = append(names, fmt.Sprintf("pack_to_worker[%d]", i), fmt.Sprintf("worker_to_pack[%d]", i))
	}
	return names
}

// fileSetup returns a setup callback that creates one file per role in dir
// holding the role's name, the way the stand-in creates its memfds.
func fileSetup(dir string, p bindings.Profile, created *[]*os.File) func(Logon) (*Fds, error) {
	return func(l Logon) (*Fds, error) {
		mk := func(name string) *os.File {
			f, err := os.CreateTemp(dir, "shm")
			if err != nil {
				panic(err)
			}
			_, _ = f.WriteString(name)
			if created != nil {
				*created = append(*created, f)
			}
			return f
		}
		fds := &Fds{Allocator: mk("allocator"), TpuToPack: mk("tpu_to_pack"), Progress: mk("progress_tracker")}
		if p.CheckQueues {
			fds.PackToCheck, fds.CheckToPack = mk("pack_to_check_worker"), mk("check_worker_to_pack")
		}
		for i := 0; i < int(l.WorkerCount); i++ {
			fds.Workers = append(fds.Workers, WorkerFds{
				PackToWorker: mk(fmt.Sprintf("pack_to_worker[%d]", i)),
				WorkerToPack: mk(fmt.Sprintf("worker_to_pack[%d]", i)),
			})
		}
		return fds, nil
	}
}

// checkFds reads every received file from the start and compares it with
// the role the server put at that position.
func checkFds(t *testing.T, p bindings.Profile, fds *Fds, workers int) {
	t.Helper()
	files := fds.Files(p)
	want := roleNames(p, workers)
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d", len(files), len(want))
	}
	for i, f := range files {
		buf := make([]byte, 64)
		n, err := f.ReadAt(buf, 0)
		if err != nil && err != io.EOF {
			t.Fatalf("fd %d (%s): %v", i, f.Name(), err)
		}
		if string(buf[:n]) != want[i] {
			t.Errorf("fd %d holds %q, want %q", i, buf[:n], want[i])
		}
		if !strings.HasPrefix(f.Name(), "agave:"+want[i]) {
			t.Errorf("fd %d named %q, want agave:%s", i, f.Name(), want[i])
		}
	}
}

func sockPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "scheduler_bindings.ipc")
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// serveOnce runs Accept in a goroutine and returns its outcome.
func serveOnce(t *testing.T, s *Server, setup func(Logon) (*Fds, error)) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := s.Accept(context.Background(), setup)
		done <- err
	}()
	return done
}

func TestDialAcceptEveryProfile(t *testing.T) {
	for _, p := range bindings.Profiles() {
		for _, workers := range []int{1, 4, MaxWorkers} {
			t.Run(fmt.Sprintf("%s/%dworkers", p.Name, workers), func(t *testing.T) {
				path := sockPath(t)
				s, err := Listen(path, p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				var created []*os.File
				t.Cleanup(func() {
					for _, f := range created {
						_ = f.Close()
					}
				})
				var got Logon
				done := make(chan error, 1)
				go func() {
					var err error
					got, err = s.Accept(context.Background(), fileSetup(t.TempDir(), p, &created))
					done <- err
				}()
				l := sampleLogon()
				l.WorkerCount = uint64(workers)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				fds, err := Dial(ctx, path, p, l)
				if err != nil {
					t.Fatal(err)
				}
				defer fds.Close()
				if err := <-done; err != nil {
					t.Fatalf("server: %v", err)
				}
				checkFds(t, p, fds, workers)
				want := l
				if !p.CheckWorkerCount {
					want.CheckWorkerCount = 0
				}
				if p.LogonSize < 80 {
					want.PackToCheckCapacity, want.CheckToPackCapacity = 0, 0
				}
				if got != want {
					t.Errorf("server read %+v, want %+v", got, want)
				}
			})
		}
	}
}

func TestDialRefusals(t *testing.T) {
	for _, c := range []struct {
		name           string
		server, client bindings.Profile
		mod            func(*Logon)
		setupErr       error
		reason         string
		pick           string
	}{
		{"version 4.0 server", bindings.Profile40, bindings.Profile44, nil, nil, "Version; server=3; client=6", "4.0"},
		{"version 4.1 server", bindings.Profile41, bindings.Profile44, nil, nil, "Version; server=4; client=6", "4.1"},
		{"version 4.3 server", bindings.Profile43, bindings.Profile44, nil, nil, "Version; server=5; client=6", "4.3"},
		{"version 4.4 server", bindings.Profile44, bindings.Profile41, nil, nil, "Version; server=(handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262144)", "4.4"},
		{"workers", bindings.Profile40, bindings.Profile40, func(l *Logon) { l.WorkerCount = 100 }, nil, "Worker count; count=100", ""},
		{"handles", bindings.Profile44, bindings.Profile44, func(l *Logon) { l.AllocatorHandles = 0 }, nil, "Allocator handles; count=0", ""},
		{"setup failure", bindings.Profile41, bindings.Profile41, nil, errors.New("Rts alloc; err=Io(Os { code: 12 })"), "Rts alloc; err=Io(Os { code: 12 })", ""},
		{"long reason truncated", bindings.Profile41, bindings.Profile41, nil, errors.New(strings.Repeat("x", 300)), strings.Repeat("x", 255), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := sockPath(t)
			s, err := Listen(path, c.server)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			setup := fileSetup(t.TempDir(), c.server, nil)
			if c.setupErr != nil {
				setup = func(Logon) (*Fds, error) { return nil, c.setupErr }
			}
			done := serveOnce(t, s, setup)
			l := sampleLogon()
			if c.mod != nil {
				c.mod(&l)
			}
			before := openFds(t)
			fds, err := Dial(context.Background(), path, c.client, l)
			if fds != nil {
				t.Fatal("fds with a refusal")
			}
			var r *RefusalError
			if !errors.As(err, &r) || !strings.HasPrefix(r.Reason, c.reason) {
				t.Fatalf("client err %v, want reason %q", err, c.reason)
			}
			if len(r.Reason) > 255 {
				t.Fatalf("reason of %d bytes", len(r.Reason))
			}
			if serr := <-done; serr == nil {
				t.Fatal("server reports success")
			}
			if after := openFds(t); after > before {
				t.Errorf("fds leaked: %d before, %d after", before, after)
			}
			if c.pick == "" {
				if r.VersionRefused {
					t.Fatal("not a version refusal")
				}
				return
			}
			p, ok := r.ProfileFor()
			if !ok || p.Name != c.pick {
				t.Fatalf("ProfileFor = %s, %v; want %s", p.Name, ok, c.pick)
			}
			if !strings.Contains(err.Error(), "--agave-abi "+c.pick) {
				t.Errorf("message does not say what to do: %v", err)
			}
		})
	}
}

func TestDialSocketProblems(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "scheduler_bindings.ipc")
	_, err := Dial(context.Background(), missing, bindings.Profile40, sampleLogon())
	if !errors.Is(err, ErrSocketMissing) || !strings.Contains(err.Error(), "--enable-scheduler-bindings") ||
		!strings.Contains(err.Error(), "--ledger") || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing socket: %v", err)
	}

	// A stale socket: bound once, listener gone, file left behind.
	stale := filepath.Join(dir, "stale.ipc")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	_, err = Dial(context.Background(), stale, bindings.Profile40, sampleLogon())
	if !errors.Is(err, ErrSocketMissing) || !strings.Contains(err.Error(), "stale") {
		t.Errorf("stale socket: %v", err)
	}

	// Listen replaces the stale socket, but never a regular file.
	s, err := Listen(stale, bindings.Profile40)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	_ = s.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("Close left the socket file: %v", err)
	}
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(regular, bindings.Profile40); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep" {
		t.Error("regular file clobbered")
	}
	if _, err := Listen(filepath.Join(dir, "x"), bindings.Auto); err == nil {
		t.Error("Listen with auto")
	}
	if _, err := Dial(context.Background(), missing, bindings.Auto, sampleLogon()); err == nil || errors.Is(err, ErrSocketMissing) {
		t.Errorf("Dial with auto: %v", err)
	}
}

// TestDialErrorMapping covers permission denied, which the test (running as
// root here) cannot provoke on a real socket.
func TestDialErrorMapping(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  error
		text  string
	}{
		{syscall.EACCES, ErrPermission, "validator's user"},
		{syscall.EPERM, ErrPermission, "write access"},
		{syscall.ENOENT, ErrSocketMissing, "which is its --ledger"},
		{syscall.ECONNREFUSED, ErrSocketMissing, "stale"},
	} {
		err := dialError("/l/scheduler_bindings.ipc", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", c.errno)})
		if !errors.Is(err, c.want) {
			t.Errorf("%v: %v", c.errno, err)
		}
		if c.errno != syscall.ENOENT && !strings.Contains(err.Error(), c.text) {
			t.Errorf("%v: message %q lacks %q", c.errno, err, c.text)
		}
	}
}

func TestPermissionDeniedAsOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		// As a normal user the socket mode itself denies us.
		path := sockPath(t)
		s, err := Listen(path, bindings.Profile40)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		_, err = Dial(context.Background(), path, bindings.Profile40, sampleLogon())
		if !errors.Is(err, ErrPermission) {
			t.Fatalf("chmod 000 socket: %v", err)
		}
		return
	}
	// As root: a child test binary that drops to nobody is checked in
	// crossproc_test.go (TestCrossProcessPermissionDenied).
}

// rawServer accepts one connection and hands it to fn; done closes when fn
// has returned and the connection is closed.
func rawServer(t *testing.T, fn func(c *net.UnixConn)) string {
	path, _ := rawServerDone(t, fn)
	return path
}

func rawServerDone(t *testing.T, fn func(c *net.UnixConn)) (string, <-chan struct{}) {
	t.Helper()
	path := sockPath(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		fn(c)
	}()
	return path, done
}

func TestDialProtocolViolations(t *testing.T) {
	// The server's files exist before the fd counts are taken, so only
	// what the client receives and fails to close shows up as a leak.
	tmp := t.TempDir()
	var pool []int
	for i := 0; i < 16; i++ {
		f, err := os.CreateTemp(tmp, "f")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		pool = append(pool, int(f.Fd()))
	}
	files := func(n int) []int { return pool[:n] }
	readLogon := func(c *net.UnixConn) {
		var b [MessageSize]byte
		_, _ = io.ReadFull(c, b[:])
	}
	for _, c := range []struct {
		name  string
		serve func(c *net.UnixConn)
		want  error
		text  string
	}{
		{"too few fds", func(c *net.UnixConn) {
			readLogon(c)
			_, _, _ = c.WriteMsgUnix([]byte{logonSuccess}, syscall.UnixRights(files(2)...), nil)
		}, ErrProtocol, "carries 2 fds"},
		{"too many fds", func(c *net.UnixConn) {
			readLogon(c)
			_, _, _ = c.WriteMsgUnix([]byte{logonSuccess}, syscall.UnixRights(files(7)...), nil)
		}, ErrProtocol, "carries 7 fds"},
		{"success without fds", func(c *net.UnixConn) {
			readLogon(c)
			_, _ = c.Write([]byte{logonSuccess})
		}, ErrProtocol, "carries 0 fds"},
		{"4.3 count to a 4.0 client", func(c *net.UnixConn) {
			readLogon(c)
			_, _, _ = c.WriteMsgUnix([]byte{logonSuccess}, syscall.UnixRights(files(bindings.Profile43.FdCount(4))...), nil)
		}, ErrProtocol, "expects 11"},
		{"unknown reply", func(c *net.UnixConn) {
			readLogon(c)
			_, _ = c.Write([]byte{0x07})
		}, ErrProtocol, "unknown reply byte 0x07"},
		{"close without reply", func(c *net.UnixConn) { readLogon(c) }, ErrProtocol, "without a reply"},
		{"refusal without reason", func(c *net.UnixConn) {
			readLogon(c)
			_, _ = c.Write([]byte{logonFailure})
		}, ErrProtocol, "without a reason"},
		{"silent server", func(c *net.UnixConn) {
			readLogon(c)
			time.Sleep(500 * time.Millisecond)
		}, ErrTimeout, "no answer in time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, served := rawServerDone(t, c.serve)
			before := openFds(t)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			fds, err := Dial(ctx, path, bindings.Profile40, sampleLogon())
			if fds != nil || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, %v; want %v containing %q", fds, err, c.want, c.text)
			}
			<-served
			if after := openFds(t); after > before {
				t.Errorf("received fds leaked: %d open before, %d after", before, after)
			}
		})
	}
}

func TestDialRefusalSplitAcrossWrites(t *testing.T) {
	path := rawServer(t, func(c *net.UnixConn) {
		var b [MessageSize]byte
		_, _ = io.ReadFull(c, b[:])
		_, _ = c.Write([]byte{logonFailure})
		time.Sleep(20 * time.Millisecond)
		_, _ = c.Write([]byte{7, 'T', 'i'})
		time.Sleep(20 * time.Millisecond)
		_, _ = c.Write([]byte("meout"))
	})
	_, err := Dial(context.Background(), path, bindings.Profile40, sampleLogon())
	var r *RefusalError
	if !errors.As(err, &r) || r.Reason != "Timeout" {
		t.Fatalf("%v", err)
	}
}

func TestDialCancelled(t *testing.T) {
	path := rawServer(t, func(c *net.UnixConn) { time.Sleep(2 * time.Second) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := Dial(ctx, path, bindings.Profile40, sampleLogon())
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
}

func TestServerTimeouts(t *testing.T) {
	for _, c := range []struct {
		name   string
		client func(c *net.UnixConn)
		reason string
	}{
		{"partial logon", func(c *net.UnixConn) { _, _ = c.Write(make([]byte, 100)) }, "Timeout"},
		{"nothing", func(c *net.UnixConn) {}, "Timeout"},
		{"close during handshake", func(c *net.UnixConn) { _, _ = c.Write(make([]byte, 100)); _ = c.CloseWrite() }, "Close during handshake"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := sockPath(t)
			s, err := Listen(path, bindings.Profile41)
			if err != nil {
				t.Fatal(err)
			}
			s.ReadTimeout = 300 * time.Millisecond
			t.Cleanup(func() { _ = s.Close() })
			done := serveOnce(t, s, func(Logon) (*Fds, error) { t.Error("setup called"); return nil, nil })
			conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			c.client(conn)
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			reply, _ := io.ReadAll(conn)
			serr := <-done
			var r *RefusalError
			if !errors.As(serr, &r) || r.Reason != c.reason {
				t.Fatalf("server err %v, want %q", serr, c.reason)
			}
			want := append([]byte{logonFailure, byte(len(c.reason))}, c.reason...)
			if string(reply) != string(want) {
				t.Fatalf("client got %q, want %q", reply, want)
			}
			if c.reason == "Timeout" && time.Since(start) < 250*time.Millisecond {
				t.Fatalf("timed out after %v", time.Since(start))
			}
		})
	}
	if ServerReadTimeout != time.Second {
		t.Error("Agave's handshake timeout is 1 s")
	}
}

func TestServerSetupFdMismatch(t *testing.T) {
	path := sockPath(t)
	s, err := Listen(path, bindings.Profile44)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	done := serveOnce(t, s, func(l Logon) (*Fds, error) {
		return &Fds{Workers: make([]WorkerFds, l.WorkerCount)}, nil
	})
	_, err = Dial(context.Background(), path, bindings.Profile44, sampleLogon())
	var r *RefusalError
	if !errors.As(err, &r) || !strings.Contains(r.Reason, "setup returned no file at position 0") {
		t.Fatalf("%v", err)
	}
	if serr := <-done; serr == nil {
		t.Fatal("server reports success")
	}
}

func TestAcceptCancelled(t *testing.T) {
	s, err := Listen(sockPath(t), bindings.Profile40)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Accept(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	// The listener still works afterwards.
	done := serveOnce(t, s, fileSetup(t.TempDir(), bindings.Profile40, nil))
	fds, err := Dial(context.Background(), s.Path(), bindings.Profile40, sampleLogon())
	if err != nil {
		t.Fatal(err)
	}
	_ = fds.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
