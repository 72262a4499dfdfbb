#!/bin/bash
# wrk-logs.sh: throughput of two supervised workers that log every request
# (accesslog, combined format), into one access log through the supervisor
# (WithLog + LogWriter) against a File and a BufferedWriter per worker, with
# wrk, the two set-ups alternated ROUNDS times. Reports req/s, p50, p99, the
# server's CPU time per request (supervisor and workers, from
# /proc/<pid>/stat) and the lines logged. Linux; needs wrk; port 18080 free.
#
#   go test -c -o /tmp/cluster.test ./cluster/
#   cluster/testdata/wrk-logs.sh /tmp/cluster.test 4
set -eu
BIN=$1; ROUNDS=${2:-3}
ticks() { # utime+stime of pid, in clock ticks
  local s; s=$(sed 's/.*) //' /proc/$1/stat); set -- $s; echo $((${12} + ${13}))
}
run() {
  local name=$1; shift
  local dir; dir=$(mktemp -d)
  env "$@" CLUSTER_TEST_PROGRAM=logs CLUSTER_TEST_WORKERS=2 CLUSTER_TEST_LOGDIR="$dir" \
    CLUSTER_TEST_ADDR=127.0.0.1:18080 "$BIN" 2>/dev/null &
  local pid=$!
  sleep 1
  local pids="$pid $(ps -o pid= --ppid $pid | tr '\n' ' ')" t0=0 t1=0 p
  for p in $pids; do t0=$((t0 + $(ticks $p))); done
  local out; out=$(wrk -t2 -c64 -d8s --latency 'http://127.0.0.1:18080/req?id=1')
  for p in $pids; do t1=$((t1 + $(ticks $p))); done
  local n rps p50 p99 cpu
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  cpu=$(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t*1e6/hz/n}')
  kill -TERM $pid; wait $pid 2>/dev/null || true
  local lines; lines=$(cat "$dir"/access*.log | wc -l)
  echo "$name req/s=$rps p50=$p50 p99=$p99 server-cpu-us/req=$cpu requests=$n lines=$lines"
  rm -rf "$dir"
}
for _ in $(seq "$ROUNDS"); do
  run one-log CLUSTER_TEST_LOG_MODE=
  run per-worker-files CLUSTER_TEST_LOG_MODE=files
done
