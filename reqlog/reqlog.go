// Package reqlog is the small vocabulary that shipshape's packages share
// about a request's log line, without depending on each other: the
// attributes any layer adds to the request's access line ([AddAttrs]), the
// request's route even through middleware that copies the request
// ([RecordRoute], [Route]), the OpenTelemetry semantic-convention keys of
// request records, and nginx's 499 status for a client that left.
//
// accesslog creates the request's [Entry] and writes it; ratelimit,
// slowdown and recoverer add to it; a handler can too:
//
//	reqlog.AddAttrs(r.Context(), slog.String("user.id", id))
//
// The package imports only the standard library and chi.
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
)

// StatusClientClosedRequest is nginx's 499, "client closed request": the
// status logged for a request whose client went away before a response was
// sent. The client never sees it.
const StatusClientClosedRequest = 499
