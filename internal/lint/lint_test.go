package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// restricted are the imports only the channel layer may use.
var restricted = []string{"unsafe", "sync/atomic", "golang.org/x/sys/unix"}

// staticcheckVersion is the staticcheck release the fence runs
// (honnef.co/go/tools; v0.8.2 knows Go 1.26).
const staticcheckVersion = "v0.8.2"

// allowedRoots may import restricted packages: the channel layer and its
// subpackages.
var allowedRoots = []string{"channels"}

// root returns the module's directory and path.
func root(t *testing.T) (dir, module string) {
	t.Helper()
	out := run(t, "", "go", "list", "-m", "-f", "{{.Dir}} {{.Path}}")
	dir, module, ok := strings.Cut(strings.TrimSpace(out), " ")
	if !ok {
		t.Fatalf("go list -m: %q", out)
	}
	return dir, module
}

// run runs a command in dir and returns its standard output; it fails the
// test with the command's output when the command fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// TestImportFences fails when a package outside channels/ imports unsafe,
// sync/atomic or golang.org/x/sys/unix, in its code or its tests.
func TestImportFences(t *testing.T) {
	dir, module := root(t)
	out := run(t, dir, "go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		n++
		if allowed(module, p.ImportPath) {
			continue
		}
		for _, imps := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range imps {
				for _, r := range restricted {
					if imp == r {
						t.Errorf("%s imports %s: only channels/ and its subpackages may (move the code there and expose typed records)", p.ImportPath, imp)
					}
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list found only %d packages", n)
	}
}

func allowed(module, path string) bool {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return false
	}
	for _, a := range allowedRoots {
		if rel == a || strings.HasPrefix(rel, a+"/") {
			return true
		}
	}
	return false
}

func TestAllowed(t *testing.T) {
	const m = "example.org/m"
	for path, want := range map[string]bool{
		m + "/channels": true, m + "/channels/shm": true, m + "/channelsx": false,
		m + "/sidecar": false, m: false, "other/channels": false,
	} {
		if got := allowed(m, path); got != want {
			t.Errorf("allowed(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestGofmt fails when gofmt would change a file.
func TestGofmt(t *testing.T) {
	dir, _ := root(t)
	if out := run(t, dir, "gofmt", "-l", "."); strings.TrimSpace(out) != "" {
		t.Errorf("gofmt would reformat (run gofmt -w on them):\n%s", out)
	}
}

// TestVet fails when go vet reports anything.
func TestVet(t *testing.T) {
	if testing.Short() {
		t.Skip("go vet builds every package: not in -short")
	}
	dir, _ := root(t)
	run(t, dir, "go", "vet", "./...")
}

// TestStaticcheck fails when staticcheck reports anything. It runs the
// pinned release through `go run`, which fetches it from the Go module
// proxy into the module cache the first time.
func TestStaticcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("staticcheck is fetched and built: not in -short")
	}
	dir, _ := root(t)
	run(t, dir, "go", "run", "honnef.co/go/tools/cmd/staticcheck@"+staticcheckVersion, "./...")
}

// TestStandsAlone fails when a file points at documents outside the
// repository: what the code relies on lives in it (docs/, package docs).
func TestStandsAlone(t *testing.T) {
	dir, _ := root(t)
	banned := []string{"../shared", "spec/solana-wire.md", "DESIGN.md"}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != dir && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".go" && ext != ".md" && ext != "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 { // a binary
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == filepath.Join("internal", "lint", "lint_test.go") {
			return nil // the list above
		}
		for _, s := range banned {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s refers to %s, outside the repository: bring what it needs into docs/ or a package doc", rel, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
