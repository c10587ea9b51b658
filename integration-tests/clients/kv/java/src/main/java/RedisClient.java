import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisPubSub;
import redis.clients.jedis.Pipeline;
import redis.clients.jedis.Response;
import redis.clients.jedis.Transaction;
import redis.clients.jedis.exceptions.JedisDataException;

/**
 * Drives a Redis server with Jedis (RESP2) and prints one line per command.
 *
 * <p>Usage: RedisClient HOST:PORT N. The same operations as the other Redis clients: N SET and
 * GET, a pipeline of N INCR, N failing LPUSH (WRONGTYPE) and INCR (ERR), N MULTI/EXEC
 * transactions, then pub/sub: SUBSCRIBE on a second connection, N PUBLISH, N messages read.
 */
public final class RedisClient {
  /** Every client selects this database, so spans carry db.namespace. */
  private static final int DATABASE = 1;

  private interface Call {
    void run();
  }

  private static void call(String name, Call call) {
    try {
      call.run();
      System.out.println("sent " + name + " ok");
    } catch (JedisDataException e) {
      System.out.println("sent " + name + " error " + e.getMessage().split(" ")[0]);
    }
  }

  public static void main(String[] args) throws Exception {
    // The go-ahead: a test sends a line when the agent traces this process.
    new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
    String[] hostPort = args[0].split(":");
    String host = hostPort[0];
    int port = Integer.parseInt(hostPort[1]);
    int count = Integer.parseInt(args[1]);
    try (Jedis client = new Jedis(host, port)) {
      call("SELECT", () -> client.select(DATABASE));
      call("PING", client::ping);
      for (int i = 0; i < count; i++) {
        String key = "kv:" + i;
        String value = "v" + i;
        call("SET", () -> client.set(key, value));
        call("GET", () -> client.get(key));
      }

      Pipeline pipeline = client.pipelined();
      List<Response<Long>> incrs = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        incrs.add(pipeline.incr("kv:counter"));
      }
      pipeline.sync();
      for (Response<Long> incr : incrs) {
        call("INCR", incr::get);
      }

      for (int i = 0; i < count; i++) {
        call("LPUSH", () -> client.lpush("kv:0", "x"));
        call("INCR", () -> client.incr("kv:0"));
      }

      for (int i = 0; i < count; i++) {
        Transaction tx = client.multi();
        tx.set("kv:tx", "1");
        tx.incr("kv:tx");
        tx.exec();
        for (String name : new String[] {"MULTI", "SET", "INCR", "EXEC"}) {
          System.out.println("sent " + name + " ok");
        }
      }

      pubSub(host, port, client, count);
    }
  }

  private static void pubSub(String host, int port, Jedis client, int count) throws Exception {
    CountDownLatch subscribed = new CountDownLatch(1);
    CountDownLatch received = new CountDownLatch(count);
    JedisPubSub listener =
        new JedisPubSub() {
          @Override
          public void onSubscribe(String channel, int subscribedChannels) {
            subscribed.countDown();
          }

          @Override
          public void onMessage(String channel, String message) {
            System.out.println("received message " + channel);
            received.countDown();
            if (received.getCount() == 0) {
              unsubscribe();
            }
          }
        };
    Thread thread =
        new Thread(
            () -> {
              try (Jedis subscriber = new Jedis(host, port)) {
                subscriber.select(DATABASE);
                subscriber.subscribe(listener, "kv:events");
              }
            });
    thread.start();
    if (!subscribed.await(10, TimeUnit.SECONDS)) {
      throw new IllegalStateException("no subscribe confirmation");
    }
    System.out.println("sent SELECT ok");
    System.out.println("sent SUBSCRIBE ok");
    for (int i = 0; i < count; i++) {
      String message = "event " + i;
      call("PUBLISH", () -> client.publish("kv:events", message));
    }
    if (!received.await(10, TimeUnit.SECONDS)) {
      throw new IllegalStateException("not every message arrived");
    }
    thread.join();
    System.out.println("sent UNSUBSCRIBE ok");
  }
}
