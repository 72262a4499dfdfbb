// Package reqlog is the small vocabulary that shipshape's packages share
// about a request's log records, without depending on each other:
//
//   - [AddAttrs] adds attributes to the request's access line, which
//     accesslog writes from the request's [Entry]; ratelimit, slowdown and
//     recoverer add their decisions to it, and a handler can too
//     (reqlog.AddAttrs(r.Context(), slog.String("user.id", id))).
//   - [Route] is the request's route (http.route) for the access line, the
//     panic report and the metrics, even through middleware that copies the
//     request between them and the router, when [RecordRoute] wraps the
//     router.
//   - [NewHandler] wraps a slog.Handler so that every record logged with a
//     request's context (slog.InfoContext(r.Context(), …)) carries the
//     request's id, client address, route and OpenTelemetry trace and span
//     ids, the keys of its access line: an application's records can be
//     found next to the request's access line.
//   - The attribute keys of request records ([KeyMethod] …), OpenTelemetry
//     semantic-convention names where one exists, and nginx's 499 status for
//     a client that left ([StatusClientClosedRequest]).
//
// A service puts it together like this (accesslog outermost, then the
// middleware that copies the request, RecordRoute around the router):
//
//	h, err := reqlog.NewHandler(slog.NewJSONHandler(os.Stdout, nil))
//	if err != nil {
//		return err
//	}
//	slog.SetDefault(slog.New(h)) // application records and the access lines
//	access, err := accesslog.New(nil)
//	if err != nil {
//		return err
//	}
//	handler := access(authenticate(reqlog.RecordRoute(mux)))
//
// The package imports only the standard library, chi and OpenTelemetry's
// trace API (no SDK).
//
// Examples: [ExampleAddAttrs], [ExampleNewHandler], [ExampleRecordRoute],
// [ExampleAppendTrace].
package reqlog

// Attribute keys of request log records: the access line (accesslog) and
// the panic record (recoverer) use them. They are OpenTelemetry
// semantic-convention names where one exists.
const (
	KeyMethod       = "http.request.method"
	KeyPath         = "url.path"
	KeyQuery        = "url.query"
	KeyRoute        = "http.route"
	KeyProtocol     = "network.protocol.version"
	KeyStatus       = "http.response.status_code"
	KeyRequestSize  = "http.request.body.size"
	KeyResponseSize = "http.response.body.size"
	KeyClient       = "client.address"
	KeyPeer         = "network.peer.address"
	KeyUserAgent    = "user_agent.original"
	KeyReferer      = "http.request.header.referer"
	KeyUser         = "user.name"
	KeyRequestID    = "http.request.id"
	KeyDuration     = "duration"
	KeyTTFB         = "ttfb"
	KeyAborted      = "aborted"

	// The OpenTelemetry trace and span of the request, in lower-case hex
	// (see [AppendTrace]), under the names log pipelines correlate traces
	// with.
	KeyTraceID = "trace_id"
	KeySpanID  = "span_id"
)

// StatusClientClosedRequest is nginx's 499, "client closed request": the
// status logged for a request whose client went away before a response was
// sent. The client never sees it.
const StatusClientClosedRequest = 499
