package top

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxScrapeBytes bounds what one scrape reads: the daemon's page is a few
// tens of kilobytes; anything near this is not a qos endpoint.
const maxScrapeBytes = 16 << 20

// errScrapeTooLarge is returned for a metrics page over maxScrapeBytes.
var errScrapeTooLarge = errors.New("metrics page larger than 16 MiB")

// point is one series of a metric family: its labels and its value.
type point struct {
	labels map[string]string
	v      float64
}

// family is one scraped metric family.
type family struct {
	counter bool // a counter (its rate is what a person wants to see)
	points  []point
	byKey   map[string]float64 // labelKey(labels) → value, summed over repeats
}

// labelKey is a canonical form of a label set, for exact lookups.
func labelKey(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

// sample is one scrape of the daemon's metrics page.
type sample struct {
	at   time.Time
	fams map[string]*family
}

// parseSample reads a Prometheus text exposition into a sample taken at at.
// Histograms and summaries keep their _sum and _count (as the text format
// names them); a summary's quantiles are series of its own name with a
// quantile label, as the text format writes them (qos pack's interval
// latencies). Histogram buckets are left out.
func parseSample(r io.Reader, at time.Time) (*sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	s := &sample{at: at, fams: make(map[string]*family, len(mfs))}
	for name, mf := range mfs {
		f := &family{counter: mf.GetType() == dto.MetricType_COUNTER}
		for _, m := range mf.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				f.points = append(f.points, point{labels, m.GetCounter().GetValue()})
			case dto.MetricType_GAUGE:
				f.points = append(f.points, point{labels, m.GetGauge().GetValue()})
			case dto.MetricType_UNTYPED:
				f.points = append(f.points, point{labels, m.GetUntyped().GetValue()})
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					ql := make(map[string]string, len(labels)+1)
					for k, v := range labels {
						ql[k] = v
					}
					ql["quantile"] = strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)
					f.points = append(f.points, point{ql, q.GetValue()})
				}
				s.add(name+"_sum", true, labels, m.GetSummary().GetSampleSum())
				s.add(name+"_count", true, labels, float64(m.GetSummary().GetSampleCount()))
			case dto.MetricType_HISTOGRAM:
				s.add(name+"_sum", true, labels, m.GetHistogram().GetSampleSum())
				s.add(name+"_count", true, labels, float64(m.GetHistogram().GetSampleCount()))
			}
		}
		if len(f.points) > 0 {
			s.fams[name] = f
		}
	}
	for _, f := range s.fams {
		f.byKey = make(map[string]float64, len(f.points))
		for _, p := range f.points {
			f.byKey[labelKey(p.labels)] += p.v
		}
	}
	return s, nil
}

func (s *sample) add(name string, counter bool, labels map[string]string, v float64) {
	f := s.fams[name]
	if f == nil {
		f = &family{counter: counter}
		s.fams[name] = f
	}
	f.points = append(f.points, point{labels, v})
}

// has reports whether the sample holds the metric.
func (s *sample) has(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.fams[name]
	return ok
}

// value returns the series of name whose labels include the pairs kv
// (label, value, label, value…), summed over every such series; ok is
// false when there is none.
func (s *sample) value(name string, kv ...string) (v float64, ok bool) {
	if s == nil {
		return 0, false
	}
	f := s.fams[name]
	if f == nil {
		return 0, false
	}
	for _, p := range f.points {
		if matches(p.labels, kv) {
			v += p.v
			ok = true
		}
	}
	return v, ok
}

func matches(labels map[string]string, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if labels[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// labelValues returns the values label takes in name's series, sorted.
func (s *sample) labelValues(name, label string) []string {
	if s == nil || s.fams[name] == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range s.fams[name].points {
		if v, ok := p.labels[label]; ok && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// rate returns the per-second growth of a counter between prev and cur;
// ok is false without two scrapes holding it. A counter that went down
// (the daemon restarted) counts from zero.
func rate(prev, cur *sample, name string, kv ...string) (float64, bool) {
	if prev == nil || cur == nil {
		return 0, false
	}
	a, okA := prev.value(name, kv...)
	b, okB := cur.value(name, kv...)
	dt := cur.at.Sub(prev.at).Seconds()
	if !okA || !okB || dt <= 0 {
		return 0, false
	}
	d := b - a
	if d < 0 {
		d = b
	}
	r := d / dt
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, false
	}
	return r, true
}

// rateKey is rate for the one series whose canonical label set is key.
func rateKey(prev, cur *sample, name, key string) (float64, bool) {
	if prev == nil || cur == nil || prev.fams[name] == nil || cur.fams[name] == nil {
		return 0, false
	}
	a, okA := prev.fams[name].byKey[key]
	b, okB := cur.fams[name].byKey[key]
	dt := cur.at.Sub(prev.at).Seconds()
	if !okA || !okB || dt <= 0 {
		return 0, false
	}
	d := b - a
	if d < 0 {
		d = b
	}
	r := d / dt
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, false
	}
	return r, true
}

// scraper fetches the daemon's metrics page.
type scraper struct {
	url    string
	client *http.Client
}

func newScraper(url string, timeout time.Duration) *scraper {
	return &scraper{url: url, client: &http.Client{Timeout: timeout}}
}

// scrape fetches and parses one sample. Errors name the URL.
func (sc *scraper) scrape(ctx context.Context) (*sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sc.url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics URL %s: %w", sc.url, err)
	}
	// The text format: what every Prometheus client serves.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := sc.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w (is qos running with --metrics-addr?)", sc.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %s", sc.url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("scrape %s: content type %q, want the Prometheus text format", sc.url, ct)
	}
	at := time.Now()
	body := io.LimitReader(resp.Body, maxScrapeBytes+1)
	lr := &countingReader{r: body}
	s, err := parseSample(lr, at)
	if lr.n > maxScrapeBytes {
		return nil, fmt.Errorf("scrape %s: %w", sc.url, errScrapeTooLarge)
	}
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", sc.url, err)
	}
	return s, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
