package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/problem"
)

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "3")
	problem.Write(rec, httptest.NewRequest(http.MethodGet, "/", nil),
		problem.Details{Status: http.StatusTooManyRequests, Detail: `retry in 3 seconds "quoted" <b>`})

	assert.Equal(t, 429, rec.Code)
	assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	assert.Equal(t, "3", rec.Header().Get("Retry-After"), "headers set before are kept")
	var d problem.Details
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
	assert.Equal(t, problem.Details{Type: "about:blank", Title: "Too Many Requests", Status: 429,
		Detail: `retry in 3 seconds "quoted" <b>`}, d)
}

func TestWriteNegotiates(t *testing.T) {
	tests := []struct {
		name     string
		accept   []string
		wantType string
		wantBody string
	}{
		{"no Accept", nil, problem.ContentType, `{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"busy"}` + "\n"},
		{"json", []string{"application/json"}, problem.ContentType, ""},
		{"problem json", []string{"application/problem+json"}, problem.ContentType, ""},
		{"curl", []string{"*/*"}, problem.ContentType, ""},
		{"browser", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, problem.ContentType, ""},
		{"text only", []string{"text/plain"}, "text/plain; charset=utf-8", "Service Unavailable: busy\n"},
		{"html only", []string{"text/html"}, "text/plain; charset=utf-8", "Service Unavailable: busy\n"},
		{"json refused", []string{"application/json;q=0, text/plain"}, "text/plain; charset=utf-8", ""},
		{"text preferred", []string{"application/json;q=0.5, text/plain;q=0.9"}, "text/plain; charset=utf-8", ""},
		{"malformed q never wins", []string{"text/plain;q=x, application/json;q=0.1"}, problem.ContentType, ""},
		{"two headers", []string{"text/plain;q=0.1", "application/json"}, problem.ContentType, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, a := range tt.accept {
				req.Header.Add("Accept", a)
			}
			rec := httptest.NewRecorder()
			problem.Write(rec, req, problem.Details{Status: http.StatusServiceUnavailable, Detail: "busy"})
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "status")
			assert.Equal(t, tt.wantType, rec.Header().Get("Content-Type"), "content type")
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, rec.Body.String(), "body")
			}
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), "nosniff")
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"), "cache control")
			assert.Equal(t, strconv.Itoa(rec.Body.Len()), rec.Header().Get("Content-Length"), "content length")
		})
	}
}

func TestWriteHeadAndNilRequest(t *testing.T) {
	rec := httptest.NewRecorder()
	problem.Write(rec, httptest.NewRequest(http.MethodHead, "/", nil), problem.Details{Status: 404})
	assert.Equal(t, 404, rec.Code)
	assert.Empty(t, rec.Body.String(), "no body for HEAD")
	assert.NotEmpty(t, rec.Header().Get("Content-Length"), "the length of the body a GET would get")

	rec = httptest.NewRecorder()
	problem.Write(rec, nil, problem.Details{Status: 500, Type: "https://example.com/probs/oops", Title: "Oops"})
	assert.JSONEq(t, `{"type":"https://example.com/probs/oops","title":"Oops","status":500}`, rec.Body.String())
}
