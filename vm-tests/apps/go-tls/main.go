// The Go sample service's HTTP API over Go's own TLS (crypto/tls), for the Go
// TLS tests (integration-tests/tests/go_tls.rs), which build it with each
// tested toolchain, Go 1.19 onwards: so the standard library only.
// Run: PORT=8443 TLS_CERT=cert.pem TLS_KEY=key.pem [DOWNSTREAM_URL=https://127.0.0.1:9443/health] go-tls-server
// Without TLS_CERT it serves plain HTTP.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// A fresh connection per downstream call, and no proxy (Transport.Proxy is nil).
// An https:// downstream is one of these apps with a self-signed certificate.
var downstreamClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
	},
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "PORT environment variable is required")
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// os.Stdout is unbuffered, so the line is out as soon as Printf returns.
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	// One handler instead of ServeMux: the mux would answer 405/301 where the other apps answer 404.
	srv := &http.Server{Handler: http.HandlerFunc(route), IdleTimeout: 60 * time.Second}
	if cert := os.Getenv("TLS_CERT"); cert != "" {
		// HTTP/1.1 over TLS, like the other apps (a non-nil empty map turns HTTP/2 off).
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		fmt.Fprintln(os.Stderr, srv.ServeTLS(ln, cert, os.Getenv("TLS_KEY")))
	} else {
		fmt.Fprintln(os.Stderr, srv.Serve(ln))
	}
	os.Exit(1)
}

func route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath() // raw path, like the other apps see it
	get := r.Method == http.MethodGet
	isUser := strings.HasPrefix(path, "/users/")
	id := strings.TrimPrefix(path, "/users/")
	switch {
	case get && path == "/health":
		reply(w, 200, "text/plain", []byte("ok"))
	case get && isUser && id != "" && !strings.Contains(id, "/"):
		reply(w, 200, "application/json", jsonBody(map[string]string{"id": id}))
	case r.Method == http.MethodPost && path == "/users":
		n, _ := io.Copy(io.Discard, r.Body)
		reply(w, 201, "application/json", jsonBody(map[string]int64{"received": n}))
	case get && path == "/error":
		reply(w, 500, "text/plain", []byte("error"))
	case get && path == "/chunked":
		chunked(w)
	case get && path == "/downstream":
		downstream(w)
	default:
		reply(w, 404, "text/plain", []byte("not found"))
	}
}

func reply(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// jsonBody encodes compactly and without HTML escaping, to match the other apps byte for byte.
func jsonBody(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func chunked(w http.ResponseWriter) {
	// No Content-Length + Flush before the handler returns => chunked transfer encoding.
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(200)
	flusher := w.(http.Flusher)
	for _, part := range []string{"part1;", "part2;", "part3"} {
		io.WriteString(w, part)
		flusher.Flush() // one write (one chunk) per part
	}
}

func downstream(w http.ResponseWriter) {
	url := os.Getenv("DOWNSTREAM_URL")
	if url == "" {
		reply(w, 500, "text/plain", []byte("DOWNSTREAM_URL not set"))
		return
	}
	// From a goroutine of its own, as Go services often do: the call is still
	// the child of the request being served.
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result)
	go func() {
		resp, err := downstreamClient.Get(url)
		done <- result{resp, err}
	}()
	r := <-done
	resp, err := r.resp, r.err
	if err != nil {
		reply(w, 502, "text/plain", []byte("downstream error"))
		return
	}
	io.Copy(io.Discard, resp.Body) // read the full response before answering
	resp.Body.Close()
	reply(w, 200, "text/plain", []byte(fmt.Sprintf("downstream %d", resp.StatusCode)))
}
