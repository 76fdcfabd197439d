package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

// runCLI runs qos-cli with args and returns its exit code, stdout and
// stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"qos-cli"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// shmDir returns a fresh directory for channel files, on /dev/shm when
// present, removed at the end of the test.
func shmDir(t *testing.T) string {
	t.Helper()
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "qos-cli-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// lines returns the output lines whose first field is word.
func lines(out, word string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == word {
			got = append(got, l)
		}
	}
	return got
}

// wantOneLineError checks a failed run: exit 1 and one stderr line
// containing every hint.
func wantOneLineError(t *testing.T, code int, stderr string, hints ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "qos-cli: ") {
		t.Errorf("stderr is not one qos-cli line: %q", stderr)
	}
	for _, h := range hints {
		if !strings.Contains(stderr, h) {
			t.Errorf("stderr %q lacks %q", stderr, h)
		}
	}
}

func TestInitInspectRemove(t *testing.T) {
	dir := shmDir(t)
	flags := []string{"--shm-dir", dir, "--prefix", "cli_"}

	code, out, errOut := runCLI(t, append([]string{"init"}, flags...)...)
	if code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	if got := lines(out, "created"); len(got) != len(channels.Table) {
		t.Fatalf("init created %d channels:\n%s", len(got), out)
	}
	for _, s := range channels.Table {
		want := dir + "/cli_" + s.Name
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %s", want)
		}
		if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", want, fi, err)
		}
	}
	if !strings.Contains(out, "41419392") || !strings.Contains(out, "67109504") {
		t.Errorf("init output lacks the file sizes:\n%s", out)
	}

	// Idempotent: everything joined, nothing changed.
	code, out, _ = runCLI(t, append([]string{"init"}, flags...)...)
	if code != 0 || len(lines(out, "joined")) != len(channels.Table) {
		t.Fatalf("second init: %d\n%s", code, out)
	}

	// A live producer on tpu_to_qos and a seed in sch_to_qos.
	o := channels.Options{ShmDir: dir, Prefix: "cli_"}
	p, err := channels.OpenProducer[channels.Packet](o, channels.Table[0])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var pkt channels.Packet
	for range 100 {
		p.Push(&pkt)
	}
	p.Sync()
	sch, _ := channels.Lookup(channels.SchToQoS)
	ps, err := channels.OpenProducer[channels.RemainingMeta](o, sch)
	if err != nil {
		t.Fatal(err)
	}
	ps.SetMeta(channels.SeedMetaOffset, 0xdeadbeef)
	ps.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // beat, as a running producer does
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				p.Beat()
			}
		}
	}()
	code, out, errOut = runCLI(t, append([]string{"inspect", "--interval", "100ms"}, flags...)...)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, errOut)
	}
	tpu := lines(out, channels.TPU)
	if len(tpu) != 1 {
		t.Fatalf("inspect output:\n%s", out)
	}
	f := strings.Fields(tpu[0])
	// CHANNEL STATE CAPACITY TAIL HEAD LAG PRODUCER-HB alive CONSUMER-HB stalled RATE META FILE
	if f[1] != "ok" || f[2] != "32768" || f[3] != "100" || f[4] != "0" || f[5] != "100" || f[7] != "alive" || f[9] != "stalled" {
		t.Errorf("tpu_to_qos row: %q", tpu[0])
	}
	if row := lines(out, channels.SchToQoS); len(row) != 1 || !strings.Contains(row[0], "seed=0x00000000deadbeef") {
		t.Errorf("sch_to_qos row: %q", row)
	}
	if len(lines(out, channels.TxStatusCache)) != 1 || !strings.Contains(out, "1048576") {
		t.Errorf("inspect output:\n%s", out)
	}

	// One channel only, one sample.
	code, out, _ = runCLI(t, append([]string{"inspect", "--interval", "0"}, append(flags, channels.FWD)...)...)
	if code != 0 || len(lines(out, channels.FWD)) != 1 || len(lines(out, channels.TPU)) != 0 {
		t.Errorf("inspect one channel: %d\n%s", code, out)
	}

	code, out, _ = runCLI(t, append([]string{"remove"}, append(flags, channels.TPU)...)...)
	if code != 0 || len(lines(out, "removed")) != 1 {
		t.Fatalf("remove: %d\n%s", code, out)
	}
	code, out, errOut = runCLI(t, append([]string{"inspect", "--interval", "0"}, flags...)...)
	wantOneLineError(t, code, errOut, "1 of 8 channels unusable", dir+"/cli_tpu_to_qos", "file does not exist", "qos-cli init")
	if row := lines(out, channels.TPU); len(row) != 1 || !strings.Contains(row[0], "file does not exist") {
		t.Errorf("missing channel row: %q", row)
	}
	code, out, _ = runCLI(t, append([]string{"remove"}, flags...)...)
	if code != 0 || len(lines(out, "removed")) != 7 || len(lines(out, "absent")) != 1 {
		t.Fatalf("remove all: %d\n%s", code, out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left: %v", entries)
	}
}

func TestEnvironment(t *testing.T) {
	dir := shmDir(t)
	t.Setenv("QOS_SHM_DIR", dir)
	t.Setenv("QOS_PREFIX", "env_")
	code, out, errOut := runCLI(t, "init", channels.SchToQoS)
	if code != 0 || !strings.Contains(out, dir+"/env_sch_to_qos") {
		t.Fatalf("init from environment: %d %s %s", code, out, errOut)
	}
}

func TestGroup(t *testing.T) {
	dir := shmDir(t)
	const group = "65534" // nogroup
	if os.Geteuid() != 0 {
		t.Skip("only root may chgrp to an arbitrary group; package channels tests the other cases")
	}
	code, out, errOut := runCLI(t, "init", "--shm-dir", dir, "--group", group, channels.SchToQoS)
	if code != 0 || !strings.Contains(out, "0660") {
		t.Fatalf("init --group: %d %s %s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "init", "--shm-dir", dir, "--group", "no-such-group-qos", channels.TPU)
	wantOneLineError(t, code, errOut, "unknown group", "no-such-group-qos")
}

func TestErrors(t *testing.T) {
	dir := shmDir(t)
	code, _, errOut := runCLI(t, "inspect", "--bogus")
	wantOneLineError(t, code, errOut, "flag provided but not defined", "qos-cli inspect --help")
	code, _, errOut = runCLI(t, "init", "--shm-dir", dir, "nope")
	wantOneLineError(t, code, errOut, `unknown channel "nope"`, "tpu_to_qos")
	code, _, errOut = runCLI(t, "init", "--use-huge-pages", "--hugetlbfs", dir)
	wantOneLineError(t, code, errOut, "hugetlbfs not mounted", "mount -t hugetlbfs")
	code, _, errOut = runCLI(t, "inspect", "--shm-dir", dir, "--interval", "-1s")
	wantOneLineError(t, code, errOut, "negative")
	code, _, errOut = runCLI(t, "nosuchcommand")
	if code == 0 {
		t.Errorf("unknown command succeeded: %s", errOut)
	}
	// A corrupt file: init refuses to touch it.
	path := dir + "/" + channels.SchToQoS
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAA}, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "init", "--shm-dir", dir, channels.SchToQoS)
	wantOneLineError(t, code, errOut, path, "wrong magic", "qos-cli remove")
}

func TestHugePagesInit(t *testing.T) {
	dir := os.Getenv("QOS_TEST_HUGETLBFS")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("QOS_TEST_HUGETLBFS is not set under CI=true: ./scripts/test must mount hugetlbfs")
		}
		t.Skip("QOS_TEST_HUGETLBFS not set: run ./scripts/test as root")
	}
	prefix := "qos-cli-test-"
	flags := []string{"--use-huge-pages", "--hugetlbfs", dir, "--prefix", prefix}
	t.Cleanup(func() { runCLI(t, append([]string{"remove"}, flags...)...) })
	code, out, errOut := runCLI(t, append([]string{"init"}, append(flags, channels.SchToQoS)...)...)
	if code != 0 || !strings.Contains(out, "2097152") {
		t.Fatalf("init on huge pages: %d %s %s", code, out, errOut)
	}
	// All eight need far more pages than the test script reserves.
	counts, err := channels.ReadHugePages(2 << 20)
	if err == nil && counts.Available() < 150 {
		code, _, errOut = runCLI(t, append([]string{"init"}, flags...)...)
		wantOneLineError(t, code, errOut, "not enough free huge pages", "7 channels", "/proc/sys/vm/nr_hugepages")
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatal(code)
	}
	for _, c := range []string{"init", "inspect", "remove"} {
		if !strings.Contains(out, c) {
			t.Errorf("top-level help lacks %s:\n%s", c, out)
		}
	}
	for _, tc := range []struct {
		cmd   string
		words []string
	}{
		{"init", []string{"idempotent", "--prefix", "QOS_PREFIX", "--use-huge-pages", "--hugetlbfs", "/mnt/hugepages", "--shm-dir", "/dev/shm", "--group", "0660", "nr_hugepages", "CHANNEL"}},
		{"inspect", []string{"--interval", "heartbeat", "seed", "lag", "--prefix", "alive"}},
		{"remove", []string{"delete", "--prefix", "--shm-dir"}},
	} {
		code, out, _ := runCLI(t, tc.cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d", tc.cmd, code)
		}
		for _, w := range tc.words {
			if !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %q:\n%s", tc.cmd, w, out)
			}
		}
	}
}
