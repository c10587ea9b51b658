// loadgen: a fixed-rate HTTP/1.1 load generator (wrk2's idea; Debian has no wrk2).
//
// It keeps -conns keep-alive connections, each sending GET requests on a fixed schedule so
// that all of them together send -rate requests per second. Each connection has at most one
// request outstanding; when the server is late, the next request goes out as soon as the
// previous answer is in, and its latency is counted from the time it was *scheduled* to go
// out (no coordinated omission: a stalled server shows up in the percentiles). Requests
// scheduled during -warmup are sent but not counted.
//
// Prints one JSON object: target_rate, achieved_rate (responses completed in the measured
// window per second), completed_total (warm-up included), requests, errors, reconnects, p50_us, p90_us, p99_us, p999_us, max_us.
//
// Usage: loadgen -addr 127.0.0.1:18080 -path / -rate 5000 -conns 32 -duration 10s -warmup 2s
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type conn struct {
	addr string
	req  []byte
	c    net.Conn
	r    *bufio.Reader
}

func (c *conn) dial() error {
	if c.c != nil {
		c.c.Close()
	}
	nc, err := net.DialTimeout("tcp", c.addr, 2*time.Second)
	if err != nil {
		c.c = nil
		return err
	}
	c.c = nc
	c.r = bufio.NewReaderSize(nc, 16384)
	return nil
}

// roundTrip sends one request and reads one whole response. It returns the status code and
// whether the server asked to close the connection.
func (c *conn) roundTrip(deadline time.Time) (int, bool, error) {
	c.c.SetDeadline(deadline)
	if _, err := c.c.Write(c.req); err != nil {
		return 0, true, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, true, err
	}
	if len(line) < 12 || !strings.HasPrefix(string(line), "HTTP/1.") {
		return 0, true, errors.New("bad status line")
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, true, errors.New("bad status")
	}
	closeConn := line[7] == '0' // HTTP/1.0 without keep-alive
	length := int64(-1)
	chunked := false
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, true, err
		}
		if len(h) <= 2 {
			break
		}
		s := strings.ToLower(strings.TrimSpace(string(h)))
		switch {
		case strings.HasPrefix(s, "content-length:"):
			length, _ = strconv.ParseInt(strings.TrimSpace(s[15:]), 10, 64)
		case strings.HasPrefix(s, "transfer-encoding:") && strings.Contains(s, "chunked"):
			chunked = true
		case strings.HasPrefix(s, "connection:"):
			v := strings.TrimSpace(s[11:])
			if v == "close" {
				closeConn = true
			} else if v == "keep-alive" {
				closeConn = false
			}
		}
	}
	switch {
	case chunked:
		for {
			l, err := c.r.ReadSlice('\n')
			if err != nil {
				return 0, true, err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(string(l), ";", 2)[0]), 16, 64)
			if err != nil {
				return 0, true, err
			}
			if _, err := c.r.Discard(int(n) + 2); err != nil {
				return 0, true, err
			}
			if n == 0 {
				break
			}
		}
	case length >= 0:
		if _, err := c.r.Discard(int(length)); err != nil {
			return 0, true, err
		}
	default:
		io.Copy(io.Discard, c.r)
		closeConn = true
	}
	return status, closeConn, nil
}

type result struct {
	lat        []int64 // ns, measured window only
	done       int64   // responses completed inside the measured window
	total      int64   // responses completed, warm-up included
	errors     int64
	reconnects int64
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "host:port")
	path := flag.String("path", "/", "request path")
	rate := flag.Float64("rate", 1000, "requests per second, all connections together")
	conns := flag.Int("conns", 32, "keep-alive connections")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "time before the measured window")
	flag.Parse()

	req := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: beyla-bench-loadgen\r\nAccept: */*\r\n\r\n", *path, *addr))
	interval := time.Duration(float64(*conns) / *rate * 1e9)
	t0 := time.Now().Add(100 * time.Millisecond)
	measureStart := t0.Add(*warmup)
	end := measureStart.Add(*duration)

	results := make([]result, *conns)
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := &results[i]
			c := &conn{addr: *addr, req: req}
			if err := c.dial(); err != nil {
				res.errors++
			}
			start := t0.Add(time.Duration(int64(interval) * int64(i) / int64(*conns)))
			for k := int64(0); ; k++ {
				intended := start.Add(time.Duration(k * int64(interval)))
				if !intended.Before(end) {
					return
				}
				if d := time.Until(intended); d > 0 {
					time.Sleep(d)
				}
				if time.Now().After(end.Add(2 * time.Second)) {
					return
				}
				if c.c == nil {
					if err := c.dial(); err != nil {
						res.errors++
						time.Sleep(10 * time.Millisecond)
						continue
					}
					res.reconnects++
				}
				status, closeConn, err := c.roundTrip(time.Now().Add(5 * time.Second))
				now := time.Now()
				if err != nil {
					res.errors++
					c.c.Close()
					c.c = nil
					continue
				}
				if status < 200 || status >= 400 {
					res.errors++
				}
				res.total++
				if !intended.Before(measureStart) {
					res.lat = append(res.lat, int64(now.Sub(intended)))
				}
				if !now.Before(measureStart) && now.Before(end) {
					res.done++
				}
				if closeConn {
					c.c.Close()
					c.c = nil
				}
			}
		}(i)
	}
	wg.Wait()

	var all []int64
	var done, total, errs, reconn int64
	for i := range results {
		all = append(all, results[i].lat...)
		done += results[i].done
		total += results[i].total
		errs += results[i].errors
		reconn += results[i].reconnects
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		idx := int(p / 100 * float64(len(all)))
		if idx >= len(all) {
			idx = len(all) - 1
		}
		return float64(all[idx]) / 1e3
	}
	out := map[string]any{
		"target_rate":         *rate,
		"achieved_rate":       float64(done) / duration.Seconds(),
		"requests":            len(all),
		"completed_in_window": done,
		"completed_total":     total,
		"errors":              errs,
		"reconnects":          reconn,
		"p50_us":              pct(50),
		"p90_us":              pct(90),
		"p99_us":              pct(99),
		"p999_us":             pct(99.9),
		"max_us":              pct(100),
	}
	json.NewEncoder(os.Stdout).Encode(out)
	if errs > 0 && done == 0 {
		os.Exit(1)
	}
}
