package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "3")
	Write(rec, http.StatusTooManyRequests, `retry in 3 seconds "quoted" <b>`)

	assert.Equal(t, 429, rec.Code)
	assert.Equal(t, ContentType, rec.Header().Get("Content-Type"))
	assert.Equal(t, "3", rec.Header().Get("Retry-After"), "headers set before are kept")
	var d Details
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
	assert.Equal(t, Details{Type: "about:blank", Title: "Too Many Requests", Status: 429,
		Detail: `retry in 3 seconds "quoted" <b>`}, d)
}
