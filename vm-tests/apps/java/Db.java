// The /db endpoints of the Java sample app: one statement over a new
// connection to PostgreSQL (pgjdbc), MySQL/MariaDB (MariaDB Connector/J) or
// Redis (Jedis). Compiled by ../build-frameworks.sh against the clients in
// target/apps/java/lib (../java-db/pom.xml); App loads it when first asked.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import redis.clients.jedis.ClientSetInfoConfig;
import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;

public final class Db {
    /** The statement each SQL endpoint runs, and the Redis key it increments. */
    static final String SQL_STATEMENT = "SELECT 42 AS answer";
    static final String REDIS_KEY = "beyla:hits";
    /** The user, password and database of both SQL servers. */
    static final String DB_NAME = "beyla";
    static final int TIMEOUT_SECONDS = 10;

    private Db() {}

    /** Runs `store`'s statement against `addr` (host:port) and returns its number. */
    public static long query(String store, String addr) throws Exception {
        switch (store) {
            case "postgres":
                return sql("jdbc:postgresql://" + addr + "/" + DB_NAME + "?user=" + DB_NAME
                        + "&sslmode=disable&connectTimeout=" + TIMEOUT_SECONDS);
            case "mysql":
                return sql("jdbc:mariadb://" + addr + "/" + DB_NAME + "?user=" + DB_NAME
                        + "&password=" + DB_NAME + "&connectTimeout=" + TIMEOUT_SECONDS * 1000);
            case "redis":
                return redis(addr);
            default:
                throw new IllegalArgumentException("no store " + store);
        }
    }

    private static long sql(String url) throws Exception {
        try (Connection conn = DriverManager.getConnection(url);
                Statement statement = conn.createStatement();
                ResultSet rows = statement.executeQuery(SQL_STATEMENT)) {
            rows.next();
            return rows.getLong(1);
        }
    }

    private static long redis(String addr) {
        // No CLIENT SETINFO at connect: the connection carries our command only.
        DefaultJedisClientConfig config = DefaultJedisClientConfig.builder()
                .clientSetInfoConfig(ClientSetInfoConfig.DISABLED)
                .timeoutMillis(TIMEOUT_SECONDS * 1000)
                .build();
        try (Jedis jedis = new Jedis(HostAndPort.from(addr), config)) {
            return jedis.incr(REDIS_KEY);
        }
    }
}
