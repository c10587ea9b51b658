// Sample gRPC server (grpc-go): demo.v1.Greeter on 127.0.0.1:$PORT, the same
// behaviour as vm-tests/apps/grpc/python/server.py. Prints "listening on <port>".
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"beyla-sample/grpc/demo"
)

const slow = 300 * time.Millisecond

func prepare(name string) (string, error) {
	if rest, ok := strings.CutPrefix(name, "slow-"); ok {
		time.Sleep(slow)
		name = rest
	}
	if strings.HasPrefix(name, "fail") {
		return name, status.Errorf(codes.NotFound, "no such name: %s", name)
	}
	return name, nil
}

func sayHello(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	req := new(demo.HelloRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	name, err := prepare(req.Name)
	if err != nil {
		return nil, err
	}
	return &demo.HelloReply{Message: "hello " + name}, nil
}

func streamHellos(_ any, stream grpc.ServerStream) error {
	req := new(demo.HelloRequest)
	if err := stream.RecvMsg(req); err != nil {
		return err
	}
	name, err := prepare(req.Name)
	if err != nil {
		return err
	}
	for i := int32(0); i < req.Count; i++ {
		if err := stream.SendMsg(&demo.HelloReply{Message: fmt.Sprintf("hello %s #%d", name, i)}); err != nil {
			return err
		}
	}
	return nil
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: demo.Service,
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "SayHello", Handler: sayHello}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "StreamHellos",
		Handler:       streamHellos,
		ServerStreams: true,
	}},
	Metadata: "demo.proto",
}

func main() {
	port, ok := os.LookupEnv("PORT")
	if !ok {
		fmt.Fprintln(os.Stderr, "PORT is not set")
		os.Exit(1)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts := []grpc.ServerOption{grpc.ForceServerCodec(demo.Codec{})}
	// TLS_CERT and TLS_KEY (PEM files): gRPC over Go's crypto/tls.
	if cert := os.Getenv("TLS_CERT"); cert != "" {
		creds, err := credentials.NewServerTLSFromFile(cert, os.Getenv("TLS_KEY"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(&serviceDesc, struct{}{})
	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
