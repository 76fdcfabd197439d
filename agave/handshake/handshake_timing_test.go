package handshake

import (
	"context"
	"os"
	"testing"

	"github.com/solqos/qos/agave/bindings"
)

// BenchmarkLogon measures a whole logon over a real socket: 1024-byte
// write, server checks, 2+2·workers files passed back, client wraps them.
func BenchmarkLogon(b *testing.B) {
	for _, p := range []bindings.Profile{bindings.Profile40, bindings.Profile44} {
		b.Run(p.Name, func(b *testing.B) {
			path := b.TempDir() + "/scheduler_bindings.ipc"
			s, err := Listen(path, p)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var files []*os.File
			defer func() {
				for _, f := range files {
					_ = f.Close()
				}
			}()
			l := sampleLogon()
			l.WorkerCount = 4
			fds, err := fileSetup(b.TempDir(), p, &files)(l)
			if err != nil {
				b.Fatal(err)
			}
			setup := func(Logon) (*Fds, error) { return fds, nil }
			done := make(chan error, 1)
			go func() {
				for {
					if _, err := s.Accept(context.Background(), setup); err != nil {
						done <- err
						return
					}
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				got, err := Dial(context.Background(), path, p, l)
				if err != nil {
					b.Fatal(err)
				}
				_ = got.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logons/s")
			_ = s.Close()
			<-done
		})
	}
}
