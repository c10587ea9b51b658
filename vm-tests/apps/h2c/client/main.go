// Sample h2c client: sends GET requests one after another over ONE HTTP/2
// connection with prior knowledge (no TLS, no Upgrade), with net/http only.
// (curl 7.88's --http2-prior-knowledge cannot reuse its connection to a Go
// h2c server: the second transfer fails with "Error in the HTTP2 framing layer".)
//
//	h2c-client [-H 'name: value']... URL...
//
// Prints one line per request: <status> <proto> <reused 0|1> <start_ns> <end_ns> <url>
// and exits 1 if any request failed.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"time"
)

func main() {
	var headers [][2]string
	var urls []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		if args[i] == "-H" && i+1 < len(args) {
			name, value, _ := strings.Cut(args[i+1], ":")
			headers = append(headers, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
			i++
			continue
		}
		urls = append(urls, args[i])
	}
	transport := &http.Transport{Protocols: new(http.Protocols)}
	transport.Protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	failed := false
	for _, url := range urls {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, h := range headers {
			req.Header.Set(h[0], h[1])
		}
		start := time.Now().UnixNano()
		resp, err := client.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, url, err)
			failed = true
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		end := time.Now().UnixNano()
		r := 0
		if reused {
			r = 1
		}
		fmt.Printf("%d %s %d %d %d %s\n", resp.StatusCode, resp.Proto, r, start, end, url)
	}
	if failed {
		os.Exit(1)
	}
}
