// Package connlimit limits connections at layer 4, before a byte of HTTP is
// read: per client IP, how many may be open at once and how fast new ones
// may come; for all clients, how many may be open at once. A connection over
// a limit is reset, and Accept goes on to the next one.
//
//	ln, err := net.Listen("tcp", ":8080")
//	if err != nil { … }
//	limited, err := connlimit.New(ln,
//		connlimit.WithMaxConnsPerIP(20),  // open at once per client IP
//		connlimit.WithAcceptRate(10, 40), // new connections per client IP: 40 at once, then 10/s
//		connlimit.WithMaxConns(10_000),   // all clients
//		connlimit.WithExempt(netip.MustParsePrefix("127.0.0.1/32"))) // your local proxy
//	if err != nil { … }
//	srv.Serve(limited)
//
// It is its own package, as golang.org/x/net/netutil's LimitListener is,
// because it shares nothing with ratelimit's request limits: no store, no
// key function, no HTTP. It depends on nothing outside the standard
// library.
//
// Each limit is off at 0, its default, so that a configuration value can
// turn it off; a negative or NaN value is an error from [New], as is
// every other value an option cannot use.
//
// Examples: [ExampleNew].
package connlimit
