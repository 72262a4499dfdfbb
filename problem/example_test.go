package problem_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/shipshape-go/shipshape/problem"
)

// A service's own error format, for every error response shipshape writes:
// pass the function to each package's WithProblemWriter.
func ExampleWriter() {
	var apiError problem.Writer = func(w http.ResponseWriter, r *http.Request, d problem.Details) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(d.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": d.Status, "message": d.Detail}})
	}
	rec := httptest.NewRecorder()
	apiError(rec, httptest.NewRequest(http.MethodGet, "/", nil),
		problem.Details{Status: http.StatusTooManyRequests, Detail: "Rate limit exceeded: retry in 3 seconds."})
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 429 {"error":{"code":429,"message":"Rate limit exceeded: retry in 3 seconds."}}
}

func ExampleWrite() {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "text/plain")
	problem.Write(rec, req, problem.Details{Status: http.StatusServiceUnavailable, Detail: "Try again shortly."})
	fmt.Print(rec.Code, " ", rec.Header().Get("Content-Type"), " ", rec.Body.String())
	// Output:
	// 503 text/plain; charset=utf-8 Service Unavailable: Try again shortly.
}
