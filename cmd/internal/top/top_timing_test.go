package top

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkTopFrame prices one redraw's work off the screen: parsing a
// real daemon's metrics page and building and laying out the view. top
// does this once a second, so it costs its host nothing worth counting.
func BenchmarkTopFrame(b *testing.B) {
	page, err := os.ReadFile(filepath.Join("testdata", "sidecar-2.prom"))
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	prev := loadSample(b, "sidecar-1.prom", t0)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		cur, err := parseSample(bytes.NewReader(page), t0.Add(time.Second))
		if err != nil {
			b.Fatal(err)
		}
		layoutScreen(buildView(prev, cur, viewOpts{}), 132, 50)
	}
}
