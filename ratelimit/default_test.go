package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shipshape-go/shipshape/ratelimit"
)

// TestDefaultStore: a registered default store is what New uses without
// WithStore, with the limiter's policies; WithStore still wins; an error of
// the registered function fails New; nil restores a MemoryStore per
// Limiter.
func TestDefaultStore(t *testing.T) {
	shared, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	var got [][]ratelimit.Policy
	ratelimit.SetDefaultStore(func(ps []ratelimit.Policy) (ratelimit.Store, error) {
		got = append(got, append([]ratelimit.Policy(nil), ps...))
		return shared, nil
	})
	t.Cleanup(func() { ratelimit.SetDefaultStore(nil) })

	serve := func(l *ratelimit.Limiter) int {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "192.0.2.1:1000"
		rec := httptest.NewRecorder()
		l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
		return rec.Code
	}
	a, err := ratelimit.New(1, time.Hour, ratelimit.WithName("a"), ratelimit.WithPolicy("day", 10, 24*time.Hour))
	require.NoError(t, err)
	b, err := ratelimit.New(1, time.Hour, ratelimit.WithName("a"), ratelimit.WithPolicy("day", 10, 24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, [][]ratelimit.Policy{
		{{Name: "a", Limit: 1, Window: time.Hour}, {Name: "day", Limit: 10, Window: 24 * time.Hour}},
		{{Name: "a", Limit: 1, Window: time.Hour}, {Name: "day", Limit: 10, Window: 24 * time.Hour}},
	}, got, "the function gets each limiter's policies")
	assert.Equal(t, http.StatusOK, serve(a))
	assert.Equal(t, http.StatusTooManyRequests, serve(b), "both limiters count in the registered store")

	own, err := ratelimit.NewMemoryStore()
	require.NoError(t, err)
	c, err := ratelimit.New(1, time.Hour, ratelimit.WithName("a"), ratelimit.WithPolicy("day", 10, 24*time.Hour), ratelimit.WithStore(own))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, serve(c), "WithStore opts out of the default")
	assert.Len(t, got, 2, "not called with WithStore")

	boom := errors.New("table of another build")
	ratelimit.SetDefaultStore(func([]ratelimit.Policy) (ratelimit.Store, error) { return nil, boom })
	_, err = ratelimit.New(1, time.Hour)
	assert.ErrorIs(t, err, boom, "an unusable default store fails New, never falls back in silence")
	ratelimit.SetDefaultStore(func([]ratelimit.Policy) (ratelimit.Store, error) { return nil, nil })
	_, err = ratelimit.New(1, time.Hour)
	assert.Error(t, err, "a nil store without an error")

	ratelimit.SetDefaultStore(nil)
	d, err := ratelimit.New(1, time.Hour, ratelimit.WithName("a"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, serve(d), "back to a MemoryStore of its own")
	_, err = ratelimit.DefaultStore(nil)
	assert.NoError(t, err)
	w := make([]ratelimit.Window, 1)
	require.NoError(t, shared.Peek(context.Background(), []ratelimit.Policy{{Name: "a", Limit: 1, Window: time.Hour}}, "192.0.2.1", time.Now(), w))
	assert.EqualValues(t, 1, w[0].Current, "d did not count in the shared store")
}
