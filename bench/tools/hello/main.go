// hello: the smallest Go net/http server for the benchmark. GET / answers "hello".
// With REDIS_ADDR (host:port) set, GET /redis also sends one INCR to that Redis server
// over a pooled keep-alive connection and answers "redis <count>": the database client
// phase, where each request makes an HTTP server span and a Redis client span.
// Usage: PORT=18080 [REDIS_ADDR=127.0.0.1:6379] hello
// (listens on 127.0.0.1:$PORT, prints "listening on <port>")
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "PORT is required")
		os.Exit(1)
	}
	body := []byte("hello")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		pool := newRedisPool(addr)
		mux.HandleFunc("/redis", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			n, err := pool.incr()
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprintln(os.Stderr, "redis:", err)
				return
			}
			w.Write([]byte("redis " + strconv.FormatInt(n, 10)))
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
