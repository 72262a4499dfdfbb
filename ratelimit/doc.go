// Package ratelimit limits requests per client with a sliding-window
// counter, in memory or on a shared store (see the redisstore package), and
// tells clients where they stand with the IETF RateLimit headers.
//
// Usage:
//
//	limiter, err := ratelimit.New(100, time.Minute) // 100 requests per client IP per minute
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux := http.NewServeMux()
//	// …routes…
//	handler := middleware.ClientIPFromXFF("10.0.0.0/8")(limiter.Handler(mux)) // chi: trust your proxy only
//
// A request within the limit passes with RateLimit-Policy and RateLimit
// headers; one over it gets 429 Too Many Requests with Retry-After (the
// real time until one request fits, not the whole window) and an RFC 9457
// problem+json body. Every response the Limiter generates (429, and 400,
// 500 or 503 for a request it cannot decide) goes through a
// problem.Writer: [WithProblemWriter] keeps a service's own error format.
//
// # Algorithm
//
// Each key has two fixed windows aligned on the Unix epoch. The requests in
// the trailing window are estimated as the previous window's count weighted
// by the share of it still inside the trailing window, plus the current
// window's count; a request is admitted when the estimate plus one stays
// within the limit, and only admitted requests are counted. This takes
// constant memory per key, needs one atomic step per request, and never
// admits more than the limit in one fixed window; in a trailing window it
// admits at most limit + previous·elapsed/window (so at most twice the
// limit when the previous window's requests all came at its end), and
// under a steady overload about limit−1 per window.
//
// # Policies, costs and limits per request
//
// [WithPolicy] adds policies that every request must also fit (a burst and
// a sustained limit on one route); a request is counted in all of them or
// in none, in one atomic step of the store. [WithCost] makes a request
// cost more than one (a bulk endpoint), and [WithLimitFunc] gives each
// request its limit (a plan's quota). Counts are kept per policy and key,
// never per limit: the limit applies when a request is decided, so a key
// whose limit changes keeps its count. Headers, Retry-After and the
// sliding-window bound follow the request's cost and limit.
//
// [WithCountOnly] counts only the responses that matter, such as failed
// logins: each request is counted before it is passed on and given back
// once its response shows it does not count, so concurrent requests never
// exceed the limit together; a panic counts as a 500 and a client that
// left as a 499. [Limiter.Peek] shows where a key stands without counting,
// [Limiter.Reset] forgets it (after a successful login, to unblock a
// client).
//
// # Headers
//
// [WithHeaders] picks the fields: the IETF draft-10 RateLimit-Policy and
// RateLimit lists (the default, and the one to pick: named policies,
// several on one response), express-rate-limit's draft-6 and draft-7
// fields for clients written for them, GitHub's X-RateLimit-* trio, both
// of the first and the last, or none.
//
// # Keys
//
// [KeyByIP] (the default) counts per client IP: the address chi's
// ClientIPFrom… middleware put in the context, else r.RemoteAddr, with
// IPv6 grouped by /64. It never trusts X-Forwarded-For by itself. A request
// whose key cannot be computed is refused (400), never passed on
// uncounted.
//
// To limit per user, use two Limiters: one per client IP outside the
// authentication middleware, so that an unauthenticated flood is refused
// before authentication costs anything, and one inside it whose KeyFunc
// reads the identity the authentication middleware put in the context,
// so that users behind one NAT address are not limited together
// (ExampleKeyFunc_perUser).
//
// # Layer 4
//
// Package connlimit wraps a net.Listener and refuses connections beyond a
// per-IP and a global cap, or a per-IP rate of new connections, before a
// byte is read: floods of idle or reconnecting clients never reach
// http.Server. Behind a proxy every connection comes from the proxy, so
// there the proxy's own limits (nginx limit_conn, HAProxy stick tables) do
// this job.
//
// # Failure
//
// When the store fails the limiter fails open by default (the request is
// served and the error is logged at most once per 10 seconds);
// WithFailOpen(false) answers 503 instead. A request whose client left
// (net/http cancels the context when the connection is closed, reset or
// half-closed) is never served, whatever the store answered: a store call
// it cut short is not a store failure, and disconnecting is not a way past
// the limit.
//
// Examples: [ExampleNew], [ExampleLimiter_Handler], [ExampleKeys],
// [ExampleKeyFunc_perUser], [ExampleWithProblemWriter], [ExampleWithPolicy],
// [ExampleWithLimitFunc], [ExampleWithCountOnly].
package ratelimit
