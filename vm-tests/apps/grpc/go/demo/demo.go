// Package demo is the demo.v1.Greeter service of vm-tests/apps/grpc/demo.proto
// for grpc-go without generated code: the two messages are encoded by hand in
// the protobuf wire format (so the Go apps interoperate with the Python ones),
// through a codec registered under the name "proto".
package demo

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	Service          = "demo.v1.Greeter"
	SayHelloPath     = "/demo.v1.Greeter/SayHello"
	StreamHellosPath = "/demo.v1.Greeter/StreamHellos"
)

// HelloRequest is demo.v1.HelloRequest: name = 1, count = 2.
type HelloRequest struct {
	Name  string
	Count int32
}

// HelloReply is demo.v1.HelloReply: message = 1.
type HelloReply struct {
	Message string
}

// Codec marshals *HelloRequest and *HelloReply.
type Codec struct{}

func (Codec) Name() string { return "proto" }

func (Codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *HelloRequest:
		b := appendString(nil, 1, m.Name)
		if m.Count != 0 {
			b = binary.AppendUvarint(append(b, 2<<3|0), uint64(int64(m.Count)))
		}
		return b, nil
	case *HelloReply:
		return appendString(nil, 1, m.Message), nil
	}
	return nil, fmt.Errorf("demo codec cannot marshal %T", v)
}

func (Codec) Unmarshal(data []byte, v any) error {
	return eachField(data, func(field uint64, varint uint64, bytes []byte) {
		switch m := v.(type) {
		case *HelloRequest:
			switch field {
			case 1:
				m.Name = string(bytes)
			case 2:
				m.Count = int32(varint)
			}
		case *HelloReply:
			if field == 1 {
				m.Message = string(bytes)
			}
		}
	})
}

func appendString(b []byte, field uint64, s string) []byte {
	if s == "" {
		return b
	}
	b = binary.AppendUvarint(b, field<<3|2)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// eachField calls f for every varint (wire type 0) and length-delimited (wire type 2) field.
func eachField(data []byte, f func(field, varint uint64, bytes []byte)) error {
	for len(data) > 0 {
		key, n := binary.Uvarint(data)
		if n <= 0 {
			return errors.New("bad protobuf key")
		}
		data = data[n:]
		switch key & 7 {
		case 0:
			v, n := binary.Uvarint(data)
			if n <= 0 {
				return errors.New("bad protobuf varint")
			}
			data = data[n:]
			f(key>>3, v, nil)
		case 2:
			l, n := binary.Uvarint(data)
			if n <= 0 || uint64(len(data)-n) < l {
				return errors.New("bad protobuf length")
			}
			f(key>>3, 0, data[n:n+int(l)])
			data = data[n+int(l):]
		default:
			return fmt.Errorf("unsupported protobuf wire type %d", key&7)
		}
	}
	return nil
}
