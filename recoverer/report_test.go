package recoverer

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

//go:noinline
func derefNil(p *int) int { return *p }

//go:noinline
func indexOut(s []int, i int) int { return s[i] }

//go:noinline
func explicitPanic() { panic("explicit") }

// framesOf runs fn and returns the frames panicFrames keeps of its panic.
func framesOf(fn func()) (frames []runtime.Frame) {
	defer func() {
		if recover() != nil {
			frames = panicFrames(callers())
		}
	}()
	fn()
	return nil
}

func TestPanicFramesStartAtTheCulprit(t *testing.T) {
	tests := []struct {
		name string
		fn   func()
		want string
	}{
		{"nil dereference", func() { derefNil(nil) }, "recoverer.derefNil"},
		{"index out of range", func() { indexOut(nil, 3) }, "recoverer.indexOut"},
		{"explicit panic", explicitPanic, "recoverer.explicitPanic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames := framesOf(tt.fn)
			require.NotEmpty(t, frames, "frames")
			assert.True(t, strings.HasSuffix(frames[0].Function, tt.want), "innermost frame %q, want %q", frames[0].Function, tt.want)
			for _, f := range frames {
				assert.False(t, strings.HasPrefix(f.Function, "runtime."), "runtime frame kept: %s", f.Function)
				assert.NotContains(t, f.Function, "framesOf.func1", "the recovering function is not part of the stack")
			}
			stack := formatStack(frames)
			assert.True(t, strings.HasPrefix(stack, frames[0].Function+"\n\t"), "stack format: %q", stack)
			assert.Contains(t, stack, ".go:", "file and line")
		})
	}
}

// reporterFunc is a Reporter made of a function, for the tests of this
// package.
type reporterFunc func(ctx context.Context, p Panic) string

func (f reporterFunc) ReportPanic(ctx context.Context, p Panic) string { return f(ctx, p) }

// TestPanicRouteIsThePatternsPath: Panic.Route is the path of the ServeMux
// pattern the request matched, without method and host.
func TestPanicRouteIsThePatternsPath(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"GET /items/{id}", "/items/{id}"},
		{"/items/{id}", "/items/{id}"},
		{"POST example.com/a", "/a"},
		{"example.com/", "/"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			var got []string
			rep := reporterFunc(func(_ context.Context, p Panic) string { got = append(got, p.Route); return "" })
			mw, err := New(WithLogger(slog.New(slog.DiscardHandler)), WithReporter(rep))
			require.NoError(t, err)
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Pattern = tt.pattern // what a ServeMux sets on the request it routes
				panic("boom")
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			assert.Equal(t, []string{tt.want}, got, "route of pattern %q", tt.pattern)
		})
	}
}
