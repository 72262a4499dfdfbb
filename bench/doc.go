// Package bench holds what measures shipshape against its peers and
// produces the performance report: the benchmarks beside go-chi/httprate
// (ratelimit_test.go) and the report generator (cmd/benchreport, run by
// `make bench`). It is a module of its own so that the peers, the plot
// renderer and the linters it pins never reach the module graph of a
// program that imports shipshape.
package bench
