// Sample h2c server: HTTP/2 over plain TCP with prior knowledge (no TLS, no
// Upgrade), plus HTTP/1.1 on the same port, with net/http only.
//
//	GET /health      200 "ok"
//	GET /users/{id}  200 {"id":"<id>"}
//	GET /error       500 "error"
//	anything else    404 "not found"
//
// PORT is required; listens on 127.0.0.1:$PORT and prints "listening on <port>".
//
//	curl --http2-prior-knowledge http://127.0.0.1:$PORT/users/42
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func main() {
	port, ok := os.LookupEnv("PORT")
	if !ok {
		fmt.Fprintln(os.Stderr, "PORT is not set")
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { text(w, 200, "ok") })
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		body := fmt.Sprintf(`{"id":%q}`, r.PathValue("id"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write([]byte(body))
	})
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, _ *http.Request) { text(w, 500, "error") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { text(w, 404, "not found") })

	srv := &http.Server{Handler: mux, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	lis, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
