package ratelimit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/shipshape-go/shipshape/problem"
	"github.com/shipshape-go/shipshape/ratelimit"
)

func ExampleNew() {
	// 100 requests per client IP in any trailing minute.
	limiter, err := ratelimit.New(100, time.Minute)
	if err != nil {
		panic(err)
	}
	d, err := limiter.Allow(context.Background(), "192.0.2.1")
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Allowed, d.Remaining, d.Limit)

	// Bad configuration is an error, not a panic.
	_, err = ratelimit.New(0, time.Minute)
	fmt.Println(err)
	// Output:
	// true 99 100
	// ratelimit: invalid policy
	// ratelimit: limit must be > 0
}

func ExampleLimiter_Handler() {
	limiter, err := ratelimit.New(2, time.Minute, ratelimit.WithName("api"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	h := limiter.Handler(mux)

	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/hello", nil)
		req.RemoteAddr = "192.0.2.1:4711"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("RateLimit-Policy"), rec.Header().Get("Retry-After") != "")
	}
	// Output:
	// 200 "api";q=2;w=60 false
	// 200 "api";q=2;w=60 false
	// 429 "api";q=2;w=60 true
}

func ExampleKeys() {
	// Count per client and API key together, for example on a login route.
	key := ratelimit.Keys(ratelimit.KeyByIP, ratelimit.KeyByHeader("X-API-Key"))
	req := httptest.NewRequest(http.MethodPost, "/login", nil)
	req.RemoteAddr = "192.0.2.1:4711"
	req.Header.Set("X-API-Key", "k-123")
	k, err := key(req)
	fmt.Printf("%q %v\n", k, err)
	// Output:
	// "9:192.0.2.1;5:k-123" <nil>
}

// Per-user limits in two layers. Outside authentication, a limit per
// client IP stops an unauthenticated flood before authentication costs
// anything; it is generous, because everyone behind one NAT shares it.
// Inside, a limit per user, keyed by the identity the authentication
// middleware put in the context: users behind one address are not limited
// together.
func ExampleKeyFunc_perUser() {
	type userKey struct{}
	authRuns := 0
	// authenticate stands in for a real authentication middleware: it maps
	// a bearer token to a user and stores the user in the context.
	authenticate := func(next http.Handler) http.Handler {
		users := map[string]string{"token-alice": "alice", "token-bob": "bob"}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			authRuns++
			user, ok := users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			if !ok {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
		})
	}
	// keyByUser keys a request by its authenticated user. Behind
	// authenticate every request has one; without, ErrNoKey makes it a 400.
	keyByUser := func(r *http.Request) (string, error) {
		user, ok := r.Context().Value(userKey{}).(string)
		if !ok {
			return "", fmt.Errorf("%w: no authenticated user", ratelimit.ErrNoKey)
		}
		return user, nil
	}

	perIP, err := ratelimit.New(6, time.Minute, ratelimit.WithName("ip"))
	if err != nil {
		panic(err)
	}
	perUser, err := ratelimit.New(2, time.Minute, ratelimit.WithName("user"), ratelimit.WithKey(keyByUser))
	if err != nil {
		panic(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	h := perIP.Handler(authenticate(perUser.Handler(api)))

	do := func(remote, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
		req.RemoteAddr = remote
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	// Alice and Bob share one NAT address; each has a quota of 2.
	for _, user := range []string{"alice", "bob", "alice", "bob", "alice"} {
		fmt.Println(user, do("203.0.113.7:4711", "token-"+user).Code)
	}
	fmt.Println(do("203.0.113.7:4711", "token-bob").Header().Values("RateLimit-Policy"))

	// A flood without credentials from another address: after 6 the IP
	// limit answers, and authentication no longer runs.
	authRuns = 0
	var codes []int
	for range 8 {
		codes = append(codes, do("198.51.100.9:1", "").Code)
	}
	fmt.Println(codes, "authentication ran", authRuns, "times")
	// Output:
	// alice 200
	// bob 200
	// alice 200
	// bob 200
	// alice 429
	// ["ip";q=6;w=60 "user";q=2;w=60]
	// [401 401 401 401 401 401 429 429] authentication ran 6 times
}

// A service's own error format for the responses the Limiter generates:
// the 429 here, and the 400, 500 and 503 of a request it cannot decide.
// Retry-After and the RateLimit headers are already set, and FromContext
// returns the decision.
func ExampleWithProblemWriter() {
	apiError := func(w http.ResponseWriter, r *http.Request, d problem.Details) {
		body := map[string]any{"code": d.Status, "message": d.Detail}
		if dec, ok := ratelimit.FromContext(r.Context()); ok {
			body["retry_after_ms"] = dec.RetryAfter.Milliseconds()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(d.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
	}
	limiter, err := ratelimit.New(1, time.Hour, ratelimit.WithProblemWriter(apiError))
	if err != nil {
		panic(err)
	}
	h := limiter.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var rec *httptest.ResponseRecorder
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "192.0.2.1:4711"
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
	fmt.Println(rec.Code, rec.Header().Get("Retry-After") != "", rec.Header().Get("Content-Type"))
	var got struct {
		Error struct {
			Code         int    `json:"code"`
			Message      string `json:"message"`
			RetryAfterMS int64  `json:"retry_after_ms"`
		} `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	fmt.Println(got.Error.Code, strings.HasPrefix(got.Error.Message, "Rate limit exceeded"), got.Error.RetryAfterMS > 0)
	// Output:
	// 429 true application/json
	// 429 true true
}

// Login brute force: only failed attempts count, concurrent ones
// included, and a successful login clears the client's count.
func ExampleWithCountOnly() {
	limiter, err := ratelimit.New(3, 15*time.Minute, ratelimit.WithName("login"),
		ratelimit.WithCountOnly(func(status int) bool { return status >= 400 }))
	if err != nil {
		panic(err)
	}
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("password") != "correct horse" {
			http.Error(w, "wrong password", http.StatusUnauthorized)
			return
		}
		// A successful login also forgets the failures before it.
		if err := limiter.Reset(r.Context(), "192.0.2.1"); err != nil {
			panic(err)
		}
		fmt.Fprintln(w, "welcome")
	})
	h := limiter.Handler(login)
	try := func(password string) int {
		req := httptest.NewRequest(http.MethodPost, "/login?password="+password, nil)
		req.RemoteAddr = "192.0.2.1:4711"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	fmt.Println(try("a"), try("b"), try("correct+horse"), try("c"), try("d"), try("e"), try("f"))
	// Output:
	// 401 401 200 401 401 401 429
}

// A burst and a sustained limit on one route: a request must fit both and
// is counted in both or neither.
func ExampleWithPolicy() {
	limiter, err := ratelimit.New(2, time.Second, ratelimit.WithName("burst"),
		ratelimit.WithPolicy("hour", 1000, time.Hour))
	if err != nil {
		panic(err)
	}
	h := limiter.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "192.0.2.1:4711"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("RateLimit-Policy"))
	}
	d, err := limiter.Peek(context.Background(), "192.0.2.1")
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Policy, d.Allowed)
	// Output:
	// 200 "burst";q=2;w=1, "hour";q=1000;w=3600
	// 200 "burst";q=2;w=1, "hour";q=1000;w=3600
	// 429 "burst";q=2;w=1, "hour";q=1000;w=3600
	// burst false
}

// A limit per plan and a cost per endpoint: a bulk import costs 10 of a
// plan's requests.
func ExampleWithLimitFunc() {
	limiter, err := ratelimit.New(20, time.Minute, ratelimit.WithName("api"), ratelimit.WithHeaders(ratelimit.HeadersDraft7),
		ratelimit.WithLimitFunc(func(r *http.Request, p ratelimit.Policy) int {
			if r.Header.Get("X-Plan") == "pro" { // set by your authentication, never by the client
				return 10 * p.Limit
			}
			return p.Limit
		}),
		ratelimit.WithCost(func(r *http.Request) int {
			if r.URL.Path == "/import" {
				return 10
			}
			return 1
		}))
	if err != nil {
		panic(err)
	}
	h := limiter.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, c := range []struct{ plan, path, addr string }{
		{"free", "/import", "192.0.2.1:1"}, {"free", "/import", "192.0.2.1:1"}, {"free", "/items", "192.0.2.1:1"},
		{"pro", "/import", "192.0.2.2:1"},
	} {
		req := httptest.NewRequest(http.MethodPost, c.path, nil)
		req.RemoteAddr = c.addr
		req.Header.Set("X-Plan", c.plan)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.Split(rec.Header().Get("RateLimit"), ", reset")[0])
	}
	// Output:
	// 200 limit=20, remaining=10
	// 200 limit=20, remaining=0
	// 429 limit=20, remaining=0
	// 200 limit=200, remaining=190
}
