// Command kv-client drives a Redis server or a Kafka broker with a known set of
// operations and prints one line per operation it made, so a test can compare
// the agent's spans with what was really sent. It starts once it reads a line on
// standard input: a test sends it when the agent traces the process.
//
//	kv-client redis ADDR N   go-redis (RESP3): simple, pipelined, failing, MULTI/EXEC, pub/sub
//	kv-client kafka ADDR N TOPIC   segmentio/kafka-go: N produce requests, then fetch them back
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// clientID names this client in every Kafka request header.
const clientID = "beyla-kv-go"

// database is the Redis database index every client selects, so spans carry db.namespace.
const database = 1

func main() {
	if len(os.Args) < 4 {
		fail(errors.New("usage: kv-client redis ADDR N | kv-client kafka ADDR N TOPIC"))
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail(err)
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail(fmt.Errorf("waiting for the go-ahead line on stdin: %w", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch os.Args[1] {
	case "redis":
		err = runRedis(ctx, os.Args[2], n)
	case "kafka":
		if len(os.Args) < 5 {
			err = errors.New("kafka needs a TOPIC")
		} else {
			err = runKafka(ctx, os.Args[2], n, os.Args[4])
		}
	default:
		err = fmt.Errorf("unknown store %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kv-client:", err)
	os.Exit(1)
}

// sent prints one operation: its name and "ok" or the error prefix the server answered.
func sent(name string, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		fmt.Printf("sent %s ok\n", name)
		return
	}
	prefix, _, _ := strings.Cut(err.Error(), " ")
	fmt.Printf("sent %s error %s\n", name, prefix)
}

func runRedis(ctx context.Context, addr string, n int) error {
	client := redis.NewClient(&redis.Options{Addr: addr, DB: database, PoolSize: 1, Protocol: 3})
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return err
	}
	sent("PING", nil)

	for i := 0; i < n; i++ {
		key := fmt.Sprintf("kv:%d", i)
		sent("SET", client.Set(ctx, key, fmt.Sprintf("v%d", i), 0).Err())
		sent("GET", client.Get(ctx, key).Err())
	}

	pipe := client.Pipeline()
	incrs := make([]*redis.IntCmd, n)
	for i := range incrs {
		incrs[i] = pipe.Incr(ctx, "kv:counter")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for _, cmd := range incrs {
		sent("INCR", cmd.Err())
	}

	for i := 0; i < n; i++ {
		sent("LPUSH", client.LPush(ctx, "kv:0", "x").Err())
		sent("INCR", client.Incr(ctx, "kv:0").Err())
	}

	for i := 0; i < n; i++ {
		var set *redis.StatusCmd
		var incr *redis.IntCmd
		_, err := client.TxPipelined(ctx, func(tx redis.Pipeliner) error {
			set = tx.Set(ctx, "kv:tx", "1", 0)
			incr = tx.Incr(ctx, "kv:tx")
			return nil
		})
		if err != nil {
			return err
		}
		sent("MULTI", nil)
		sent("SET", set.Err())
		sent("INCR", incr.Err())
		sent("EXEC", nil)
	}

	return redisPubSub(ctx, addr, client, n)
}

// redisPubSub subscribes on a connection of its own, publishes n messages from
// the main one and reads them back: the messages are pushes, not replies.
func redisPubSub(ctx context.Context, addr string, client *redis.Client, n int) error {
	subscriber := redis.NewClient(&redis.Options{Addr: addr, DB: database, PoolSize: 1, Protocol: 3})
	defer subscriber.Close()
	sub := subscriber.Subscribe(ctx, "kv:events")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return err
	}
	sent("SUBSCRIBE", nil)
	for i := 0; i < n; i++ {
		sent("PUBLISH", client.Publish(ctx, "kv:events", fmt.Sprintf("event %d", i)).Err())
	}
	for i := 0; i < n; i++ {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("received message %s\n", msg.Channel)
	}
	return nil
}

func runKafka(ctx context.Context, addr string, n int, topic string) error {
	if err := createTopic(ctx, addr, topic); err != nil {
		return err
	}
	writer := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.LeastBytes{},
		BatchSize:    1,
		RequiredAcks: kafka.RequireAll,
		Transport:    &kafka.Transport{ClientID: clientID},
	}
	for i := 0; i < n; i++ {
		msg := kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("record %d", i))}
		if err := writer.WriteMessages(ctx, msg); err != nil {
			return err
		}
		fmt.Printf("sent produce ok %s 0\n", topic)
	}
	if err := writer.Close(); err != nil {
		return err
	}

	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond,
		Dialer: &kafka.Dialer{ClientID: clientID, Timeout: 10 * time.Second}})
	defer reader.Close()
	for i := 0; i < n; i++ {
		msg, err := reader.ReadMessage(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("received %s %d %d\n", msg.Topic, msg.Partition, msg.Offset)
	}
	return nil
}

// createTopic creates the topic and waits until its partition has a leader, so that every
// Produce the writer sends succeeds at the first attempt.
func createTopic(ctx context.Context, addr, topic string) error {
	dialer := &kafka.Dialer{ClientID: clientID, Timeout: 10 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1})
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return err
	}
	for {
		partitions, err := conn.ReadPartitions(topic)
		if err == nil && len(partitions) == 1 && partitions[0].Leader.ID >= 0 && partitions[0].Leader.Host != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s has no leader: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
