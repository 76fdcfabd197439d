package handshake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/solqos/qos/agave/bindings"
)

// Server is the validator side of the handshake for one profile. It serves
// the stand-in validator and tests; Agave's own server is what a real
// client meets.
type Server struct {
	ln      *net.UnixListener
	path    string
	profile bindings.Profile
	// ReadTimeout bounds reading the 1024-byte logon (Agave: 1 s).
	ReadTimeout time.Duration
}

// Listen binds path, first removing a stale socket left there (as Agave
// does); any other kind of file at path is an error, never removed.
func Listen(path string, p bindings.Profile) (*Server, error) {
	if !p.ABI.Valid() {
		return nil, fmt.Errorf("agave handshake server on %s: profile %q is not a concrete ABI profile", path, p.Name)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("agave handshake server: %s exists and is not a socket; refusing to replace it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("agave handshake server: removing stale socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("agave handshake server: listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return &Server{ln: ln, path: path, profile: p, ReadTimeout: ServerReadTimeout}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Profile is the profile the server speaks.
func (s *Server) Profile() bindings.Profile { return s.profile }

// Close stops listening and removes the socket file.
func (s *Server) Close() error { return s.ln.Close() }

// Accept waits for one client (until ctx ends), reads and checks its logon,
// calls setup to create the shared-memory files, and sends them. Accept does
// not close the files setup returned: they stay the caller's. On any failure
// the client gets the failure reply with the reason (a refusal, setup's
// error text, or the read error), and Accept returns the logon read so far
// with the error (a *RefusalError for protocol refusals).
func (s *Server) Accept(ctx context.Context, setup func(Logon) (*Fds, error)) (Logon, error) {
	stop := context.AfterFunc(ctx, func() { _ = s.ln.SetDeadline(time.Unix(1, 0)) })
	conn, err := s.ln.AcceptUnix()
	stop()
	if err != nil {
		if ctx.Err() != nil {
			_ = s.ln.SetDeadline(time.Time{})
			return Logon{}, fmt.Errorf("agave handshake server on %s: %w", s.path, ctx.Err())
		}
		return Logon{}, fmt.Errorf("agave handshake server on %s: accept: %w", s.path, err)
	}
	defer conn.Close()
	l, err := s.serve(conn, setup)
	if err != nil {
		var r *RefusalError
		reason := err.Error()
		if errors.As(err, &r) {
			reason = r.Reason
			r.Socket = s.path
		}
		s.refuse(conn, reason)
	}
	return l, err
}

func (s *Server) serve(conn *net.UnixConn, setup func(Logon) (*Fds, error)) (Logon, error) {
	var buf [MessageSize]byte
	if err := conn.SetReadDeadline(time.Now().Add(s.ReadTimeout)); err != nil {
		return Logon{}, &RefusalError{Reason: "Io; err=" + err.Error()}
	}
	if _, err := io.ReadFull(conn, buf[:]); err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return Logon{}, &RefusalError{Reason: "Timeout"}
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return Logon{}, &RefusalError{Reason: "Close during handshake"}
		}
		return Logon{}, &RefusalError{Reason: "Io; err=" + err.Error()}
	}
	l, err := DecodeLogon(s.profile, buf[:])
	if err != nil {
		return l, err
	}
	fds, err := setup(l)
	if err != nil {
		return l, err
	}
	files := fds.Files(s.profile)
	if want := s.profile.FdCount(int(l.WorkerCount)); len(files) != want || len(fds.Workers) != int(l.WorkerCount) {
		return l, fmt.Errorf("setup returned %d files for %d workers, want %d", len(files), l.WorkerCount, want)
	}
	raw := make([]int, len(files))
	for i, f := range files {
		if f == nil {
			return l, fmt.Errorf("setup returned no file at position %d", i)
		}
		raw[i] = int(f.Fd())
	}
	_ = conn.SetWriteDeadline(time.Now().Add(s.ReadTimeout))
	_, _, err = conn.WriteMsgUnix([]byte{logonSuccess}, syscall.UnixRights(raw...), nil)
	runtime.KeepAlive(files)
	if err != nil {
		// The client may have gone; there is nobody left to tell.
		return l, fmt.Errorf("agave handshake server on %s: sending %d fds: %w", s.path, len(raw), err)
	}
	return l, nil
}

// refuse sends [0x02, len, reason] once, without waiting long (Agave writes
// it non-blocking and ignores the outcome).
func (s *Server) refuse(conn *net.UnixConn, reason string) {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	msg := make([]byte, 0, 2+len(reason))
	msg = append(msg, logonFailure, byte(len(reason)))
	msg = append(msg, reason...)
	_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = conn.Write(msg)
}
