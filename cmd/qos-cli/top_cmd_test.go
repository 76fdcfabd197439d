package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricsServer serves a metrics page whose counters grow by 1000 per
// request, as a running daemon's do.
func metricsServer(t *testing.T) *httptest.Server {
	t.Helper()
	var (
		mu sync.Mutex // the server's handlers run on their own goroutines
		n  int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE qos_events_total counter\nqos_events_total{event=\"sent\"} %d\n", 1000*k)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestTopPlain: off a terminal, top prints blocks of lines with rates.
func TestTopPlain(t *testing.T) {
	srv := metricsServer(t)
	var out, errw bytes.Buffer
	code := run(context.Background(), []string{"qos-cli", "top", "--metrics-url", srv.URL, "--interval", "100ms", "--count", "2"}, &out, &errw)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	if n := strings.Count(out.String(), "# qos top "); n != 2 {
		t.Fatalf("%d blocks, want 2:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "sent /s") {
		t.Fatalf("no sent row:\n%s", out.String())
	}
}

func TestTopErrors(t *testing.T) {
	f := func(args []string, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var out, errw bytes.Buffer
		run(ctx, append([]string{"qos-cli", "top", "--plain", "--interval", "200ms"}, args...), &out, &errw)
		if !strings.Contains(errw.String(), want) {
			t.Errorf("%v: stderr %q, want it to contain %q", args, errw.String(), want)
		}
	}
	f([]string{"--metrics-addr", "nonsense"}, `--metrics-addr "nonsense"`)
	f([]string{"--interval", "1ms"}, "--interval 1ms")
	f([]string{"--count", "-1"}, "--count -1")
	// Nothing listens there: the error names the URL and says what to check.
	f([]string{"--metrics-addr", "127.0.0.1:1", "--count", "1"}, "scrape http://127.0.0.1:1/metrics")
	f([]string{"--metrics-addr", "127.0.0.1:1", "--count", "1"}, "--metrics-addr?")

	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintln(w, "<html></html>")
	}))
	defer html.Close()
	f([]string{"--metrics-url", html.URL, "--count", "1"}, "want the Prometheus text format")
}
