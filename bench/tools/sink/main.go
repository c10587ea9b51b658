// sink: an OTLP/HTTP receiver that reads and discards what it is sent (POST /v1/traces,
// /v1/metrics, /v1/logs answer 200 with an empty protobuf body). It counts requests and
// bytes and prints them at SIGTERM/SIGINT: "sink: requests=N bytes=N".
// Usage: PORT=4318 sink
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "PORT is required")
		os.Exit(1)
	}
	var reqs, bytes atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		reqs.Add(1)
		bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(200)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		fmt.Printf("sink: requests=%d bytes=%d\n", reqs.Load(), bytes.Load())
		os.Exit(0)
	}()
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	http.Serve(ln, h)
}
