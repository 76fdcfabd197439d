//go:build !invariants

package invariants

// Enabled is false: built without the invariants tag.
const Enabled = false
