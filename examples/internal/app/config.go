package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is everything the example service can be told; [ParseConfig]
// fills it from flags and environment variables.
type Config struct {
	Addr              string
	TrustedProxies    []string
	Limit             int
	Window            time.Duration
	SlowAfter         int
	SlowStep          time.Duration
	SlowMax           time.Duration
	MaxConnsPerIP     int
	RedisURL          string
	LogDir            string
	LogName           string // file name of the access log in LogDir
	LogFormat         string
	LogMaxSize        int64 // bytes of the access log before it rotates
	LogMaxBackups     int   // rotated access logs kept
	SentryDSN         string
	DebugPanic        bool
	DebugHang         bool
	DebugAlloc        bool
	ReadHeaderTimeout time.Duration
	MaxBodyBytes      int64
	HealthCheck       string
	// MetricsAddr is where /metrics is served (an admin listener, never
	// the public one); "" serves none. A host-less ":port" is loopback.
	MetricsAddr string

	// AccessLog, when set, receives the access log instead of the file
	// LogDir/LogName: in a cluster worker, cluster.LogWriter("access"),
	// whose supervisor owns the one file of the service (cluster.WithLog).
	AccessLog io.Writer
	// LogAttrs are added to every application record (slog.Logger.With);
	// in a cluster worker cluster.WorkerAttr(), so that each line says
	// which process wrote it.
	LogAttrs []any
}

// ParseConfig parses the command line args of the program name, with
// defaults from the environment (getenv, normally os.Getenv). Usage and
// errors are written to usage. It returns flag.ErrHelp for -h. extra
// functions define a program's own flags on the same set.
func ParseConfig(name string, args []string, getenv func(string) string, usage io.Writer, extra ...func(*flag.FlagSet)) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	for _, fn := range extra {
		fn(fs)
	}
	var cfg Config
	var proxies string
	var errs []error
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envInt := func(name string, def int) int {
		v, err := strconv.Atoi(env(name, strconv.Itoa(def)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return v
	}
	envDur := func(name string, def time.Duration) time.Duration {
		v, err := time.ParseDuration(env(name, def.String()))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return v
	}
	fs.StringVar(&cfg.Addr, "addr", env("ADDR", ":8080"), "listen address (env ADDR)")
	fs.StringVar(&proxies, "trusted-proxies", env("TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
		"comma-separated CIDRs of the proxies whose X-Forwarded-For is trusted (env TRUSTED_PROXIES)")
	fs.IntVar(&cfg.Limit, "rate-limit", envInt("RATE_LIMIT", 100), "requests per client per window; past it 429 (env RATE_LIMIT)")
	fs.DurationVar(&cfg.Window, "rate-window", envDur("RATE_WINDOW", time.Minute), "rate-limit and slow-down window (env RATE_WINDOW)")
	fs.IntVar(&cfg.SlowAfter, "slow-after", envInt("SLOW_AFTER", -1), "requests per window before delays start; 0 disables; -1 is half of -rate-limit (env SLOW_AFTER)")
	fs.DurationVar(&cfg.SlowStep, "slow-step", envDur("SLOW_STEP", 100*time.Millisecond), "added delay per request past -slow-after (env SLOW_STEP)")
	fs.DurationVar(&cfg.SlowMax, "slow-max", envDur("SLOW_MAX", 2*time.Second), "longest delay (env SLOW_MAX)")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", envInt("MAX_CONNS_PER_IP", 256), "concurrent connections per client IP at the listener (the trusted proxies are exempt); 0 = unlimited (env MAX_CONNS_PER_IP)")
	fs.StringVar(&cfg.RedisURL, "redis-url", env("REDIS_URL", ""), "redis://host:port/db to share rate limits between processes (env REDIS_URL)")
	fs.StringVar(&cfg.LogDir, "log-dir", env("LOG_DIR", "./logs"), "directory of the rotating access log; empty disables the file (env LOG_DIR)")
	cfg.LogName = "access.log"
	fs.StringVar(&cfg.LogFormat, "log-format", env("LOG_FORMAT", "dev"), "stdout format: dev, json or none (env LOG_FORMAT)")
	logMaxSize := env("LOG_MAX_SIZE", "100MiB")
	fs.StringVar(&logMaxSize, "log-max-size", logMaxSize, "size at which the access log rotates, e.g. 100MiB or 8MiB; keep it and the backups below the log directory's capacity (env LOG_MAX_SIZE)")
	fs.IntVar(&cfg.LogMaxBackups, "log-max-backups", envInt("LOG_MAX_BACKUPS", 14), "rotated access logs kept, gzip'd (env LOG_MAX_BACKUPS)")
	fs.StringVar(&cfg.SentryDSN, "sentry-dsn", env("SENTRY_DSN", ""), "report panics to this Sentry DSN (env SENTRY_DSN)")
	debug, _ := strconv.ParseBool(env("DEBUG_PANIC", "false"))
	fs.BoolVar(&cfg.DebugPanic, "debug-panic", debug, "serve GET /debug/panic, which panics on purpose (env DEBUG_PANIC)")
	debug, _ = strconv.ParseBool(env("DEBUG_HANG", "false"))
	fs.BoolVar(&cfg.DebugHang, "debug-hang", debug, "serve GET /debug/hang, after which /healthz never answers: a wedged process, for health checks (env DEBUG_HANG)")
	debug, _ = strconv.ParseBool(env("DEBUG_ALLOC", "false"))
	fs.BoolVar(&cfg.DebugAlloc, "debug-alloc", debug, "serve GET /debug/alloc?mib=N, which allocates N MiB and never frees them: a leak, for memory limits (env DEBUG_ALLOC)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", envDur("READ_HEADER_TIMEOUT", 5*time.Second), "time allowed to send the request headers (env READ_HEADER_TIMEOUT)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body", int64(envInt("MAX_BODY", 1<<20)), "largest request body in bytes (env MAX_BODY)")
	fs.StringVar(&cfg.HealthCheck, "healthcheck", "", "GET this URL, exit 0 on 2xx, else 1 (for container health checks)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", env("METRICS_ADDR", ""),
		"serve Prometheus metrics at /metrics on this admin address, e.g. :9464 (loopback when the host is empty; never the public -addr); empty serves none (env METRICS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("app: unexpected arguments %q", fs.Args())
	}
	size, err := parseSize(logMaxSize)
	if err != nil {
		return cfg, fmt.Errorf("app: -log-max-size: %w", err)
	}
	cfg.LogMaxSize = size
	if cfg.MetricsAddr != "" {
		if cfg.MetricsAddr, err = MetricsAddr(cfg.MetricsAddr); err != nil {
			return cfg, err
		}
	}
	if cfg.LogMaxBackups < 0 {
		return cfg, fmt.Errorf("app: -log-max-backups must be >= 0, not %d", cfg.LogMaxBackups)
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			// chi panics on a bad prefix: refuse it here, with its name.
			if _, err := netip.ParsePrefix(p); err != nil {
				return cfg, fmt.Errorf("app: -trusted-proxies: %q is not a CIDR prefix (e.g. 10.0.0.0/8, 127.0.0.1/32)", p)
			}
			cfg.TrustedProxies = append(cfg.TrustedProxies, p)
		}
	}
	switch cfg.LogFormat {
	case "dev", "json", "none":
	default:
		return cfg, fmt.Errorf("app: -log-format must be dev, json or none, not %q", cfg.LogFormat)
	}
	if cfg.SlowAfter == -1 {
		cfg.SlowAfter = max(0, cfg.Limit/2)
	}
	// Slow-down starts before the limit refuses, or it never acts.
	if cfg.SlowAfter < 0 || (cfg.SlowAfter > 0 && cfg.Limit > 0 && cfg.SlowAfter >= cfg.Limit) {
		return cfg, fmt.Errorf("app: -slow-after must be 0 (off) or between 1 and -rate-limit−1, not %d", cfg.SlowAfter)
	}
	return cfg, nil
}

// sizeUnits are the suffixes parseSize accepts, in binary multiples, as
// GOMEMLIMIT and systemd write them (8MiB, 512M).
var sizeUnits = []struct {
	suffix string
	shift  uint
}{
	{"KiB", 10}, {"MiB", 20}, {"GiB", 30},
	{"K", 10}, {"M", 20}, {"G", 30},
}

// parseSize parses a positive size in bytes with an optional binary unit:
// 65536, 64KiB, 8MiB, 1G.
func parseSize(s string) (int64, error) {
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a positive size such as 8MiB or 1048576", s)
	}
	return n << shift, nil
}
