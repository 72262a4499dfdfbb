package app

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsAddr(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{"off by default", nil, nil, "", false},
		{"a port alone is loopback", []string{"-metrics-addr", ":9464"}, nil, "127.0.0.1:9464", false},
		{"from the environment", nil, map[string]string{"METRICS_ADDR": ":9500"}, "127.0.0.1:9500", false},
		{"every interface only when said", []string{"-metrics-addr", "0.0.0.0:9464"}, nil, "0.0.0.0:9464", false},
		{"not an address", []string{"-metrics-addr", "9464"}, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("test", tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.MetricsAddr)
		})
	}
}
