package cluster

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMergeExpositions(t *testing.T) {
	worker := "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{code=\"200\"} 3\nreq_total 1\nreq_total{} 2\n" +
		"# HELP d Duration.\n# TYPE d histogram\nd_bucket{le=\"+Inf\"} 4\nd_sum 0.5\nd_count 4\n# a comment\n\nuntyped 7\n"
	tests := []struct {
		name  string
		parts []string // worker "0", "1", …, the last the supervisor's
		want  string
	}{
		{"one worker and the supervisor", []string{worker, "# TYPE own gauge\nown 1\n"},
			"# HELP req_total Requests.\n# TYPE req_total counter\n" +
				"req_total{worker=\"0\",code=\"200\"} 3\nreq_total{worker=\"0\"} 1\nreq_total{worker=\"0\"} 2\n" +
				"# HELP d Duration.\n# TYPE d histogram\nd_bucket{worker=\"0\",le=\"+Inf\"} 4\nd_sum{worker=\"0\"} 0.5\nd_count{worker=\"0\"} 4\n" +
				"untyped{worker=\"0\"} 7\n# TYPE own gauge\nown 1\n"},
		{"a family of two workers is written once", []string{"# TYPE a counter\na_total 1\n", "# TYPE a counter\na_total 2\n", ""},
			"# TYPE a counter\na_total{worker=\"0\"} 1\na_total{worker=\"1\"} 2\n"},
		{"a worker that answered nothing", []string{"", "# TYPE own gauge\nown 1\n"}, "# TYPE own gauge\nown 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMerger()
			for i, p := range tt.parts {
				w := workerLabel(i)
				if i == len(tt.parts)-1 {
					w = ""
				}
				m.add([]byte(p), w)
			}
			var out bytes.Buffer
			require.NoError(t, m.write(&out))
			assert.Equal(t, tt.want, out.String())
		})
	}
}

func TestMetricsOptionsRejected(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"empty address", WithMetrics("", http.NotFoundHandler()), "cluster: WithMetrics: empty address"},
		{"nil handler", WithMetrics("127.0.0.1:0", nil), "cluster: WithMetrics: nil handler"},
		{"nil provider", WithMeterProvider(nil), "cluster: WithMeterProvider: nil provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newConfig([]Option{tt.opt})
			require.EqualError(t, err, tt.want)
		})
	}
}
