// Package channels owns the shared-memory rings between the validator and
// the sidecar: their file layout (wire-compatible with Temporal's headless
// que channel), creating and joining them on /dev/shm or hugetlbfs, the
// lossy producer and consumer, the table of named channels and their record
// layouts. It knows nothing of Solana or scoring; it is the only package
// that uses unsafe or atomics.
package channels
