package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/metric"

	"github.com/shipshape-go/shipshape/internal/nilcheck"
)

// One scrape for the whole service (see docs/metrics.md): with
// [WithMetrics], the supervisor serves GET /metrics on an address of its
// own. At each scrape it asks every serving worker for its metrics over a
// socket pair it handed the worker at start ("metrics"), on which the
// worker answers with the export handler in its own process, and writes
// one exposition: every worker's samples with a worker="<id>" label, then
// the supervisor's own (workers by state, starts by reason, crashes by
// reason, each worker's RSS). The library links no exporter: the handler
// is the application's (the OpenTelemetry Prometheus exporter's registry
// through promhttp, say), and the supervisor only merges the text it
// returns.

// metricsConfig is what WithMetrics and WithMeterProvider set.
type metricsConfig struct {
	addr     string
	export   http.Handler
	set      bool
	meter    metric.MeterProvider
	meterSet bool
}

func (m *metricsConfig) validate() error {
	switch {
	case m.set && m.addr == "":
		return errors.New("cluster: WithMetrics: empty address")
	case m.set && nilcheck.Is(m.export):
		return errors.New("cluster: WithMetrics: nil handler")
	case m.meterSet && nilcheck.Is(m.meter):
		return errors.New("cluster: WithMeterProvider: nil provider")
	}
	return nil
}

// WithMetrics makes the supervisor serve GET /metrics on the TCP address
// addr (keep it on loopback or a private network, never the public port):
// one exposition in the Prometheus text format with the metrics of every
// serving worker, each sample labelled worker="<id>", followed by the
// supervisor's own (see [WithMeterProvider]).
//
// export is the handler that writes one process's metrics in the
// Prometheus text format: promhttp.HandlerFor on the registry of the
// OpenTelemetry Prometheus exporter, say. Every process runs it on its own
// metrics: a worker when the supervisor asks at a scrape, over a socket
// pair the worker inherited (so the scrape never reaches whichever worker
// the kernel picked), the supervisor for its own. A worker that does not
// answer within 5s is left out of that scrape. An empty addr or a nil
// export is an error from Run and Serve.
func WithMetrics(addr string, export http.Handler) Option {
	return func(c *config) { c.metrics.addr, c.metrics.export, c.metrics.set = addr, export, true }
}

// WithMeterProvider sets where the supervisor's own metrics go (default:
// the global provider, otel.GetMeterProvider() at the time of Run or
// Serve, which records nothing until the application sets one): workers
// by state (shipshape.cluster.workers), worker starts by reason
// (shipshape.cluster.worker.starts: start, restart, rolling restart,
// memory limit, …), crashes by [Reason] (shipshape.cluster.worker.crashes)
// and each serving worker's resident set size
// (shipshape.cluster.worker.memory.rss, Linux). docs/metrics.md lists
// them. A nil provider is an error from Run and Serve.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.metrics.meter, c.metrics.meterSet = mp, true }
}

// family is one metric family of an exposition: its HELP and TYPE lines
// and its samples, in order.
type family struct {
	name      string
	help, typ []byte
	samples   [][]byte
}

// merger merges expositions in the Prometheus text format into one, each
// family once, with a worker label on the samples of each worker.
type merger struct {
	order []*family
	byKey map[string]*family
}

func newMerger() *merger { return &merger{byKey: map[string]*family{}} }

func (m *merger) family(name string) *family {
	f, ok := m.byKey[name]
	if !ok {
		f = &family{name: name}
		m.byKey[name] = f
		m.order = append(m.order, f)
	}
	return f
}

// belongs reports whether a sample called name is of family f: a
// histogram's or summary's _bucket, _sum and _count, a counter's _total.
func belongs(f *family, name string) bool {
	if f == nil {
		return false
	}
	if name == f.name {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count", "_total", "_created", "_info"} {
		if name == f.name+suffix {
			return true
		}
	}
	return false
}

// add adds one exposition; worker is the value of its worker label, ""
// for none (the supervisor's own).
func (m *merger) add(text []byte, worker string) {
	var cur *family
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == '#' {
			fields := bytes.Fields(line)
			if len(fields) < 3 || (string(fields[1]) != "HELP" && string(fields[1]) != "TYPE") {
				continue // a plain comment
			}
			cur = m.family(string(fields[2]))
			switch {
			case string(fields[1]) == "HELP" && cur.help == nil:
				cur.help = bytes.Clone(line)
			case string(fields[1]) == "TYPE" && cur.typ == nil:
				cur.typ = bytes.Clone(line)
			}
			continue
		}
		i := bytes.IndexAny(line, "{ ")
		if i <= 0 {
			continue // not a sample
		}
		name := string(line[:i])
		if !belongs(cur, name) {
			cur = m.family(name)
		}
		cur.samples = append(cur.samples, withWorker(line, i, worker))
	}
}

// withWorker returns the sample line with the label worker="<worker>"
// added first; i is the end of the metric name.
func withWorker(line []byte, i int, worker string) []byte {
	if worker == "" {
		return bytes.Clone(line)
	}
	label := `worker="` + worker + `"`
	out := make([]byte, 0, len(line)+len(label)+3)
	out = append(out, line[:i]...)
	switch {
	case line[i] == ' ':
		out = append(out, '{')
		out = append(out, label...)
		out = append(out, '}')
		out = append(out, line[i:]...)
	case i+1 < len(line) && line[i+1] == '}':
		out = append(out, '{')
		out = append(out, label...)
		out = append(out, line[i+1:]...)
	default:
		out = append(out, '{')
		out = append(out, label...)
		out = append(out, ',')
		out = append(out, line[i+1:]...)
	}
	return out
}

// write writes the merged exposition.
func (m *merger) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range m.order {
		if len(f.samples) == 0 {
			continue
		}
		for _, l := range [][]byte{f.help, f.typ} {
			if l != nil {
				bw.Write(l)
				bw.WriteByte('\n')
			}
		}
		for _, s := range f.samples {
			bw.Write(s)
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

// bufferWriter is the http.ResponseWriter the export handler writes the
// supervisor's own metrics into.
type bufferWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header {
	if b.h == nil {
		b.h = http.Header{}
	}
	return b.h
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

// workerLabel is the value of the worker label of worker id.
func workerLabel(id int) string { return strconv.Itoa(id) }
