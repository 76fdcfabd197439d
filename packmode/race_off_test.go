//go:build !race

package packmode

const raceEnabled = false
