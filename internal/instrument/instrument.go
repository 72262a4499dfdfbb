// Package instrument is the one way shipshape's packages create and record
// their OpenTelemetry metrics: a [Meter] per package from the
// metric.MeterProvider given to its WithMeterProvider option (the global
// provider when none was given, read once at the package's New), and
// attribute sets computed once, at New, so that recording on a hot path
// is one interface call that allocates nothing.
//
// With no provider set, the global provider's instruments are no-ops until
// the application calls otel.SetMeterProvider, after which they forward to
// the one set: an instrument costs an atomic load per measurement meanwhile.
// Work that exists only to produce a measurement (reading a clock) is done
// only when [Histogram.Enabled] reports true.
package instrument

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopePrefix is the instrumentation scope of every package's meter,
// followed by the package's path below the module (ratelimit,
// ratelimit/redisstore).
const ScopePrefix = "github.com/shipshape-go/shipshape/"

// Provider returns mp, or the global provider when mp is nil (the option
// was not given).
func Provider(mp metric.MeterProvider) metric.MeterProvider {
	if mp == nil {
		return otel.GetMeterProvider()
	}
	return mp
}

// Meter creates one package's instruments. It keeps the first error an
// instrument's creation returned (an SDK rejects an invalid name or a
// conflicting registration), which the package's New returns.
type Meter struct {
	m    metric.Meter
	errs []error
	gate Gate
}

// New returns the Meter of pkg (a path below the module) from mp, or from
// the global provider when mp is nil.
func New(mp metric.MeterProvider, pkg string) *Meter {
	p := Provider(mp)
	m := &Meter{m: p.Meter(ScopePrefix + pkg)}
	if reflect.TypeOf(p).String() == globalDelegate {
		m.gate.unset = dataWord(p)
	}
	return m
}

// globalDelegate is the type of the global provider until the application
// sets one: otel's delegating provider, whose instruments record nothing
// until then and forward to the first provider set from then on.
const globalDelegate = "*global.meterProvider"

// Gate tells, in a few instructions, whether anything can be recorded at
// all: a hot path checks it before calling an instrument (an interface
// call into otel's delegating instrument costs ~50 instructions even when
// it records nothing).
type Gate struct {
	// unset points to the global provider as it was at New, when it was
	// otel's delegating one; nil when the Meter's provider is a real one.
	// Once the application sets a provider, the global one is no longer
	// it, and the delegating instruments forward to the one set (otel sets
	// up the forwarding before it publishes the new global).
	unset unsafe.Pointer
}

// dataWord is the pointer an interface holding a pointer carries. Open
// compares it rather than the interfaces: an interface comparison of
// equal dynamic types is a runtime call (runtime.ifaceeq), 20 more
// instructions on every request while no provider is set.
func dataWord(p metric.MeterProvider) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&p))[1]
}

// Gate returns the Meter's gate.
func (m *Meter) Gate() Gate { return m.gate }

// Open reports whether measurements may be recorded: false while the
// Meter's provider is the global one and the application has set none.
func (g Gate) Open() bool { return g.unset == nil || dataWord(otel.GetMeterProvider()) != g.unset }

// Err reports the errors of every instrument created so far, nil when
// there were none.
func (m *Meter) Err() error { return errors.Join(m.errs...) }

func (m *Meter) keep(err error) {
	if err != nil {
		m.errs = append(m.errs, err)
	}
}

// Counter is a monotonic count (metric.Int64Counter).
type Counter struct{ c metric.Int64Counter }

// Counter creates a counter.
func (m *Meter) Counter(name, unit, desc string) Counter {
	c, err := m.m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	m.keep(err)
	return Counter{c}
}

// Add adds n to the series of a.
func (c Counter) Add(ctx context.Context, n int64, a *Attrs) { c.c.Add(ctx, n, a.add...) }

// Inc adds one to the series of a.
func (c Counter) Inc(ctx context.Context, a *Attrs) { c.c.Add(ctx, 1, a.add...) }

// Enabled reports whether a measurement would be recorded (see
// [Histogram.Enabled]).
func (c Counter) Enabled(ctx context.Context) bool { return c.c.Enabled(ctx) }

// UpDown is a count that goes up and down (metric.Int64UpDownCounter):
// requests waiting, connections open, a store degraded.
type UpDown struct{ c metric.Int64UpDownCounter }

// UpDown creates an up-down counter.
func (m *Meter) UpDown(name, unit, desc string) UpDown {
	c, err := m.m.Int64UpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	m.keep(err)
	return UpDown{c}
}

// Add adds n (negative to subtract) to the series of a.
func (c UpDown) Add(ctx context.Context, n int64, a *Attrs) { c.c.Add(ctx, n, a.add...) }

// Histogram is a distribution of float64 values (metric.Float64Histogram),
// durations in seconds as the semantic conventions have them.
type Histogram struct{ h metric.Float64Histogram }

// DurationBuckets are the bucket boundaries, in seconds, that the HTTP
// semantic conventions advise for http.server.request.duration; every
// duration histogram of shipshape uses them.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// FastBuckets are for durations that are normally well under a millisecond
// (a store's answer): from 50µs to 1s.
var FastBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// Histogram creates a histogram with the given bucket boundaries (nil: the
// provider's default).
func (m *Meter) Histogram(name, unit, desc string, buckets []float64) Histogram {
	opts := []metric.Float64HistogramOption{metric.WithUnit(unit), metric.WithDescription(desc)}
	if buckets != nil {
		opts = append(opts, metric.WithExplicitBucketBoundaries(buckets...))
	}
	h, err := m.m.Float64Histogram(name, opts...)
	m.keep(err)
	return Histogram{h}
}

// Enabled reports whether a measurement would be recorded: false while
// the provider is the global one and none was set, so that the caller
// skips the work a measurement needs (a clock read).
func (h Histogram) Enabled(ctx context.Context) bool { return h.h.Enabled(ctx) }

// Record records v in the series of a.
func (h Histogram) Record(ctx context.Context, v float64, a *Attrs) { h.h.Record(ctx, v, a.rec...) }

// Seconds records d, in seconds, in the series of a.
func (h Histogram) Seconds(ctx context.Context, d time.Duration, a *Attrs) {
	h.h.Record(ctx, d.Seconds(), a.rec...)
}

// Observable is an instrument whose values are read at collection, by a
// callback registered with [Meter.Observe].
type Observable interface{ observable() metric.Observable }

// Observe registers fn to be called at each collection, until the
// returned function is called (by the owner's Close). fn reports its
// values, for the instruments given, through the Observer. Values read
// this way cost the hot path nothing: the owner keeps the counts it
// already keeps, and fn reads them.
func (m *Meter) Observe(fn func(o Observer), observed ...Observable) (unregister func()) {
	insts := make([]metric.Observable, len(observed))
	for i, g := range observed {
		insts[i] = g.observable()
	}
	reg, err := m.m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		fn(Observer{o})
		return nil
	}, insts...)
	m.keep(err)
	if err != nil || reg == nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// ObservableGauge is a value read at collection (metric.Int64ObservableGauge).
type ObservableGauge struct{ g metric.Int64ObservableGauge }

func (g ObservableGauge) observable() metric.Observable { return g.g }

// ObservableCounter is a monotonic count read at collection
// (metric.Int64ObservableCounter): a total the owner keeps anyway.
type ObservableCounter struct{ c metric.Int64ObservableCounter }

func (c ObservableCounter) observable() metric.Observable { return c.c }

// ObservableCounter creates an observable counter; its values come from a
// callback registered with [Meter.Observe].
func (m *Meter) ObservableCounter(name, unit, desc string) ObservableCounter {
	c, err := m.m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	m.keep(err)
	return ObservableCounter{c}
}

// Gauge creates an observable gauge; its values come from a callback
// registered with [Meter.Observe].
func (m *Meter) Gauge(name, unit, desc string) ObservableGauge {
	g, err := m.m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	m.keep(err)
	return ObservableGauge{g}
}

// Observer reports values from a callback of [Meter.Observe].
type Observer struct{ o metric.Observer }

// Gauge reports v for the series of a.
func (o Observer) Gauge(g ObservableGauge, v int64, a *Attrs) { o.o.ObserveInt64(g.g, v, a.obs...) }

// Counter reports the total v for the series of a.
func (o Observer) Counter(c ObservableCounter, v int64, a *Attrs) {
	o.o.ObserveInt64(c.c, v, a.obs...)
}

// Attrs is one series' attribute set with the measurement options that
// carry it, built once so that recording allocates nothing. The zero
// value is the series without attributes.
type Attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption
}

// NewAttrs returns the attribute set of kv.
func NewAttrs(kv ...attribute.KeyValue) *Attrs {
	if len(kv) == 0 {
		return &Attrs{}
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &Attrs{
		add: []metric.AddOption{opt},
		rec: []metric.RecordOption{opt},
		obs: []metric.ObserveOption{opt},
	}
}

// maxSeries bounds a [Series] cache: past it, a new series' attribute set
// is built at each measurement instead of kept (an allocation, never an
// unbounded map).
const maxSeries = 4096

// Series keeps the attribute set of each series whose attributes are only
// known per request (an HTTP route and status), built on its first
// measurement, so that later ones allocate nothing. It is safe for
// concurrent use.
type Series[K comparable] struct {
	mu    sync.RWMutex
	m     map[K]*Attrs
	build func(K) []attribute.KeyValue
}

// NewSeries returns a cache whose sets build makes from a key.
func NewSeries[K comparable](build func(K) []attribute.KeyValue) *Series[K] {
	return &Series[K]{m: make(map[K]*Attrs), build: build}
}

// Get returns the attribute set of k.
func (s *Series[K]) Get(k K) *Attrs {
	s.mu.RLock()
	a, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return a
	}
	a = NewAttrs(s.build(k)...)
	s.mu.Lock()
	if len(s.m) < maxSeries {
		s.m[k] = a
	}
	s.mu.Unlock()
	return a
}
