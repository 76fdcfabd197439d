// Package lint holds no code: its tests are the repository's fences, run
// by `go test` like any other (pebble's internal/lint is the model). They
// fail when
//
//   - a package outside channels/ (and its subpackages) imports unsafe,
//     sync/atomic or golang.org/x/sys/unix: everything above the channels
//     sees typed, bounds-checked records;
//   - gofmt would reformat a file, or go vet reports anything;
//   - staticcheck reports anything (a pinned release run with `go run`,
//     fetched through the Go module proxy into the module cache the first
//     time; TestVet and TestStaticcheck are skipped with -short);
//   - a file points at documents outside the repository.
package lint
