package connlimit_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/shipshape-go/shipshape/connlimit"
)

// Layer-4 limits in front of an http.Server: each client IP may hold two
// connections and open 20 at once then 10 per second; the server holds at
// most 10,000. Over a limit, the connection is reset before any of it is
// read.
func ExampleNew() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	refused := make(chan connlimit.RejectReason, 1)
	ln, err := connlimit.New(inner,
		connlimit.WithMaxConnsPerIP(2),
		connlimit.WithAcceptRate(10, 20),
		connlimit.WithMaxConns(10_000),
		connlimit.WithOnReject(func(remote net.Addr, reason connlimit.RejectReason) {
			refused <- reason // in production: a metric, or a sampled log line
		}),
	)
	if err != nil {
		panic(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	defer srv.Close()

	get := func(c net.Conn) string {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: example\r\n\r\n"); err != nil {
			return "refused"
		}
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "refused"
		}
		return status[:len(status)-2]
	}
	for i := 1; i <= 3; i++ {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil { // the reset can come before connect returns
			fmt.Printf("connection %d: refused\n", i)
			continue
		}
		defer c.Close() // keep the first two open: they hold the cap
		fmt.Printf("connection %d: %s\n", i, get(c))
	}
	fmt.Println("reason:", <-refused)
	// Output:
	// connection 1: HTTP/1.1 200 OK
	// connection 2: HTTP/1.1 200 OK
	// connection 3: refused
	// reason: max_conns_per_ip
}
