package cluster_test

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/shipshape-go/shipshape/cluster"
)

// The same binary is the service and its control command: "app -ctl
// status", "app -ctl 'scale 8'", "app -ctl reload", "app -ctl stop".
func ExampleControlCommand() {
	ctl := flag.String("ctl", "", "status, 'status -json', reload, stop or 'scale N'")
	flag.Parse()
	sock := cluster.ControlPath("app") // /run/app/control.sock for root
	if *ctl != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := cluster.ControlCommand(ctx, sock, strings.Fields(*ctl), os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second}
	if err := cluster.Serve(context.Background(), srv, cluster.WithAddr("tcp", ":8080"), cluster.WithControl(sock)); err != nil {
		log.Fatal(err)
	}
}

// Control is the client of the control socket, for a deploy script or a
// dashboard written in Go.
func ExampleControl() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cc := cluster.Control(cluster.ControlPath("app"))
	if err := cc.Reload(ctx); err != nil { // the rolling restart, done or abandoned
		log.Fatal(err)
	}
	st, err := cc.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range st.Processes {
		log.Printf("worker %d (incarnation %d) pid %d %s, up %v, %d restarts, %d bytes", p.Worker, p.Incarnation,
			p.PID, p.State, p.Uptime, p.Restarts, p.RSS)
	}
	_ = st.WriteTable(os.Stdout)
}
