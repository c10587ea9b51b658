// Sample gRPC client (grpc-go) for demo.v1.Greeter; every call goes over one
// ClientConn (one HTTP/2 connection). Same steps and output as
// vm-tests/apps/grpc/python/client.py:
//
//	client HOST:PORT STEP N [STEP N]...   (unary, stream, fail, traced, concurrent)
//
// One line per call: <method> <grpc code> <replies> <traceparent or -> <start_ns> <end_ns>.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"beyla-sample/grpc/demo"
)

var (
	printMu sync.Mutex
	allOK   = true
)

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func traceparent() string { return "00-" + randomHex(16) + "-" + randomHex(8) + "-01" }

var streamDesc = grpc.StreamDesc{StreamName: "StreamHellos", ServerStreams: true}

func call(conn *grpc.ClientConn, method, name string, count int32, tp string, want codes.Code) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if tp != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", tp)
	}
	start := time.Now().UnixNano()
	replies := 0
	var err error
	if method == "SayHello" {
		err = conn.Invoke(ctx, demo.SayHelloPath, &demo.HelloRequest{Name: name}, new(demo.HelloReply))
		if err == nil {
			replies = 1
		}
	} else {
		var stream grpc.ClientStream
		stream, err = conn.NewStream(ctx, &streamDesc, demo.StreamHellosPath)
		if err == nil {
			err = stream.SendMsg(&demo.HelloRequest{Name: name, Count: count})
		}
		if err == nil {
			err = stream.CloseSend()
		}
		for err == nil {
			if err = stream.RecvMsg(new(demo.HelloReply)); err == nil {
				replies++
			}
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	end := time.Now().UnixNano()
	code := status.Code(err)
	shown := tp
	if shown == "" {
		shown = "-"
	}
	printMu.Lock()
	defer printMu.Unlock()
	fmt.Printf("%s %d %d %s %d %d\n", method, code, replies, shown, start, end)
	if code != want {
		fmt.Fprintf(os.Stderr, "%s(%q) ended with %v (%v), expected %v\n", method, name, code, err, want)
		allOK = false
	}
}

func concurrent(conn *grpc.ClientConn, n int) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			tp := traceparent()
			ready.Done()
			<-start
			switch i % 3 {
			case 0:
				call(conn, "SayHello", fmt.Sprintf("slow-c%d", i), 0, tp, codes.OK)
			case 1:
				call(conn, "SayHello", fmt.Sprintf("slow-fail-c%d", i), 0, tp, codes.NotFound)
			default:
				call(conn, "StreamHellos", fmt.Sprintf("slow-c%d", i), 2, tp, codes.OK)
			}
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

func main() {
	if len(os.Args) < 2 || len(os.Args)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: client HOST:PORT STEP N [STEP N]...")
		os.Exit(2)
	}
	// START_DELAY_MS: wait before the first call, so that an agent selecting
	// this process at exec has attached its TLS uprobes (the Go TLS test).
	if ms, err := strconv.Atoi(os.Getenv("START_DELAY_MS")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	// GRPC_TLS=1: over Go's crypto/tls, trusting any certificate (the tests' are self-signed).
	creds := insecure.NewCredentials()
	if os.Getenv("GRPC_TLS") == "1" {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	conn, err := grpc.NewClient("passthrough:///"+os.Args[1],
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(demo.Codec{})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	steps := os.Args[2:]
	for i := 0; i < len(steps); i += 2 {
		n, err := strconv.Atoi(steps[i+1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad count:", steps[i+1])
			os.Exit(2)
		}
		for j := 0; j < n && steps[i] != "concurrent"; j++ {
			switch steps[i] {
			case "unary":
				call(conn, "SayHello", fmt.Sprintf("user-%d", j), 0, "", codes.OK)
			case "stream":
				call(conn, "StreamHellos", fmt.Sprintf("user-%d", j), 3, "", codes.OK)
			case "fail":
				call(conn, "SayHello", "fail", 0, "", codes.NotFound)
			case "traced":
				call(conn, "SayHello", fmt.Sprintf("traced-%d", j), 0, traceparent(), codes.OK)
			default:
				fmt.Fprintln(os.Stderr, "unknown step:", steps[i])
				os.Exit(2)
			}
		}
		if steps[i] == "concurrent" {
			concurrent(conn, n)
		}
	}
	if !allOK {
		os.Exit(1)
	}
}
