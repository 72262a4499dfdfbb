package reqlog

import (
	"context"
	"encoding/hex"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// AppendTrace appends to dst the trace_id and span_id ([KeyTraceID],
// [KeySpanID]) of the OpenTelemetry span in ctx, in lower-case hex as the
// W3C traceparent header writes them, when ctx carries a valid span
// context: a span a tracer started (otelhttp's server span), or a remote
// one (trace.ContextWithRemoteSpanContext). Without one it appends nothing
// and costs one context lookup; with one, the two strings share one
// allocation. accesslog and [NewHandler] use it, so that the access line
// and the records logged within the request carry the same ids.
func AppendTrace(dst []slog.Attr, ctx context.Context) []slog.Attr {
	if ctx == nil {
		return dst
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return dst
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	var b [2*len(tid) + 2*len(sid)]byte
	hex.Encode(b[:2*len(tid)], tid[:])
	hex.Encode(b[2*len(tid):], sid[:])
	s := string(b[:])
	return append(dst, slog.String(KeyTraceID, s[:2*len(tid)]), slog.String(KeySpanID, s[2*len(tid):]))
}
