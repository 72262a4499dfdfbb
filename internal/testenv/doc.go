// Package testenv starts the real servers that shipshape's tests run
// against (redis-server, nginx, haproxy) on loopback ports chosen at run
// time, and stops them when the test ends.
//
// A missing binary skips the test with a message that says how to install
// it, except when the environment variable CI is "true": there a missing
// binary fails the test, so that CI never passes by skipping. The README's
// test command (make test) installs every binary the tests need.
//
// The helpers run on Unix systems (process groups, signals); the tests that
// use them are Linux tests.
package testenv
