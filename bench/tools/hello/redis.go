package main

// A Redis client as small as the benchmark needs: one command (INCR of one
// key) in RESP2, on connections kept open and reused, as a client library's
// pool does. The bytes on the wire are those any client sends for INCR on an
// established connection; no module to download for the bench tools.

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
)

// The key every request increments.
const redisKey = "beyla:bench"

// Idle connections kept; above this, a connection is closed after use.
const redisPoolSize = 256

type redisConn struct {
	conn net.Conn
	r    *bufio.Reader
}

type redisPool struct {
	addr    string
	command []byte
	idle    chan *redisConn
}

func newRedisPool(addr string) *redisPool {
	command := fmt.Sprintf("*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", len(redisKey), redisKey)
	return &redisPool{addr: addr, command: []byte(command), idle: make(chan *redisConn, redisPoolSize)}
}

// incr sends INCR on an idle connection (a new one when none is idle) and
// returns the key's new value.
func (p *redisPool) incr() (int64, error) {
	var c *redisConn
	select {
	case c = <-p.idle:
	default:
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			return 0, err
		}
		c = &redisConn{conn: conn, r: bufio.NewReader(conn)}
	}
	n, err := c.incr(p.command)
	if err != nil {
		c.conn.Close()
		return 0, err
	}
	select {
	case p.idle <- c:
	default:
		c.conn.Close()
	}
	return n, nil
}

// incr writes the command and reads its integer reply (":<n>\r\n").
func (c *redisConn) incr(command []byte) (int64, error) {
	if _, err := c.conn.Write(command); err != nil {
		return 0, err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 4 || line[0] != ':' || line[len(line)-2] != '\r' {
		return 0, fmt.Errorf("unexpected reply %q", line)
	}
	return strconv.ParseInt(line[1:len(line)-2], 10, 64)
}
