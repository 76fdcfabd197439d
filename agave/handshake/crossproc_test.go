package handshake

import (
	"bufio"
	"context"
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

	"github.com/solqos/qos/agave/bindings"
)

// The test binary re-executes itself as the other process of the handshake
// when QOS_HS_CHILD is set: "server" listens and serves QOS_HS_ACCEPTS logons
// with files it creates; "client" dials and prints the outcome.
func TestMain(m *testing.M) {
	switch os.Getenv("QOS_HS_CHILD") {
	case "server":
		os.Exit(childServer())
	case "client":
		os.Exit(childClient())
	}
	os.Exit(m.Run())
}

func childServer() int {
	p, _ := bindings.ProfileByName(os.Getenv("QOS_HS_PROFILE"))
	s, err := Listen(os.Getenv("QOS_HS_SOCK"), p)
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	defer s.Close()
	fmt.Println("ready")
	accepts, _ := strconv.Atoi(os.Getenv("QOS_HS_ACCEPTS"))
	dir, err := os.MkdirTemp("", "qos-hs-child")
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	defer os.RemoveAll(dir)
	ok := 0
	for i := 0; i < accepts; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var created []*os.File
		_, err := s.Accept(ctx, fileSetup(dir, p, &created))
		cancel()
		for _, f := range created {
			_ = f.Close()
		}
		if err != nil {
			fmt.Println("refused", err)
			continue
		}
		ok++
	}
	fmt.Println("served", ok)
	return 0
}

func childClient() int {
	l := sampleLogon()
	l.WorkerCount, _ = strconv.ParseUint(os.Getenv("QOS_HS_WORKERS"), 10, 64)
	p, _ := bindings.ProfileByName(os.Getenv("QOS_HS_PROFILE"))
	fds, err := Dial(context.Background(), os.Getenv("QOS_HS_SOCK"), p, l)
	var r *RefusalError
	switch {
	case err == nil:
		fmt.Println("fds", len(fds.Files(p)))
		_ = fds.Close()
	case errors.As(err, &r):
		fmt.Printf("refused %q\n", r.Reason)
	case errors.Is(err, ErrPermission):
		fmt.Println("permission", err)
	default:
		fmt.Println("error", err)
	}
	return 0
}

// startChild runs the test binary as a child with env and returns a reader
// of its stdout lines.
func startChild(t *testing.T, bin string, cred *syscall.Credential, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewScanner(out)
}

func expectLine(t *testing.T, sc *bufio.Scanner, prefix string) string {
	t.Helper()
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return sc.Text()
		}
		t.Logf("child: %s", sc.Text())
	}
	t.Fatalf("child ended without a %q line (%v)", prefix, sc.Err())
	return ""
}

func TestCrossProcessEveryProfile(t *testing.T) {
	for _, p := range bindings.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			path := sockPath(t)
			cmd, sc := startChild(t, os.Args[0], nil, "QOS_HS_CHILD=server", "QOS_HS_PROFILE="+p.Name, "QOS_HS_SOCK="+path, "QOS_HS_ACCEPTS=1")
			expectLine(t, sc, "ready")
			l := sampleLogon()
			l.WorkerCount = 3
			fds, err := Dial(context.Background(), path, p, l)
			if err != nil {
				t.Fatal(err)
			}
			defer fds.Close()
			// The files the child created arrive in order and readable here.
			checkFds(t, p, fds, 3)
			expectLine(t, sc, "served 1")
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCrossProcessAutoRetry: the client logs on with the newest profile, the
// validator (another process) refuses with its version, DialAuto retries
// with the matching profile and succeeds.
func TestCrossProcessAutoRetry(t *testing.T) {
	for _, server := range []bindings.Profile{bindings.Profile40, bindings.Profile41, bindings.Profile43, bindings.Profile44} {
		t.Run(server.Name, func(t *testing.T) {
			path := sockPath(t)
			accepts := 2
			if server.Name == bindings.Newest().Name {
				accepts = 1
			}
			cmd, sc := startChild(t, os.Args[0], nil, "QOS_HS_CHILD=server", "QOS_HS_PROFILE="+server.Name, "QOS_HS_SOCK="+path, "QOS_HS_ACCEPTS="+strconv.Itoa(accepts))
			expectLine(t, sc, "ready")
			fds, p, err := DialAuto(context.Background(), path, sampleLogon(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer fds.Close()
			if p.Name != server.Name {
				t.Fatalf("auto picked %s, server speaks %s", p.Name, server.Name)
			}
			checkFds(t, p, fds, int(sampleLogon().WorkerCount))
			if accepts == 2 {
				line := expectLine(t, sc, "refused")
				if !strings.Contains(line, "Version; server=") {
					t.Errorf("first logon refused for another reason: %s", line)
				}
			}
			expectLine(t, sc, "served 1")
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCrossProcessClientRefused: this process serves, a child client logs on
// with a bad worker count and reports the reason it read.
func TestCrossProcessClientRefused(t *testing.T) {
	path := sockPath(t)
	s, err := Listen(path, bindings.Profile41)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	done := serveOnce(t, s, fileSetup(t.TempDir(), bindings.Profile41, nil))
	cmd, sc := startChild(t, os.Args[0], nil, "QOS_HS_CHILD=client", "QOS_HS_PROFILE=4.1", "QOS_HS_SOCK="+path, "QOS_HS_WORKERS=0")
	if line := expectLine(t, sc, "refused"); line != `refused "Worker count; count=0"` {
		t.Fatalf("child: %s", line)
	}
	var r *RefusalError
	if err := <-done; !errors.As(err, &r) || r.Reason != "Worker count; count=0" {
		t.Fatalf("server: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestCrossProcessPermissionDenied: a child running as nobody dials a
// root-only socket and gets ErrPermission. Needs root to switch user.
func TestCrossProcessPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching the child to another user needs root; TestPermissionDeniedAsOtherUser covers this case for a normal user")
	}
	dir, err := os.MkdirTemp("", "qos-hs-perm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "handshake.test")
	if err := copyFile(os.Args[0], bin, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scheduler_bindings.ipc")
	s, err := Listen(path, bindings.Profile40)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := os.Chmod(path, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd, sc := startChild(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534}, "QOS_HS_CHILD=client", "QOS_HS_PROFILE=4.0", "QOS_HS_SOCK="+path, "QOS_HS_WORKERS=1")
	line := expectLine(t, sc, "")
	if !strings.HasPrefix(line, "permission ") || !strings.Contains(line, "validator's user") {
		t.Fatalf("child as nobody: %s", line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
