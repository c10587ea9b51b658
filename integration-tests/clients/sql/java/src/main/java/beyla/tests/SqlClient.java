package beyla.tests;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;

/**
 * Runs the SQL scenario of the database tests with JDBC: PostgreSQL's driver
 * and MariaDB Connector/J (server-side prepared statements).
 *
 * <p>Usage: java -jar sql-client.jar postgres|mysql HOST PORT N [tls]
 *
 * <p>One connection; N statements of each kind (see ../README.md); prints one
 * JSON line per statement sent (kind, text, error code, wall-clock window).
 */
public final class SqlClient {
    private SqlClient() {}

    private static long nowNs() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    private static void emit(String kind, String sql, String error, long start, int count) {
        System.out.println("{\"kind\":" + quote(kind) + ",\"sql\":" + quote(sql)
                + ",\"error\":" + quote(error) + ",\"start_ns\":" + start
                + ",\"end_ns\":" + nowNs() + ",\"count\":" + count + "}");
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String database = args[0];
        String host = args[1];
        String port = args[2];
        int n = Integer.parseInt(args[3]);
        boolean tls = args.length > 4 && args[4].equals("tls");
        String url;
        String code;
        if (database.equals("postgres")) {
            url = "jdbc:postgresql://" + host + ":" + port + "/beyla?user=beyla&sslmode="
                    + (tls ? "require" : "disable");
        } else if (database.equals("mysql")) {
            url = "jdbc:mariadb://" + host + ":" + port
                    + "/beyla?user=beyla&password=beyla&useServerPrepStmts=true";
        } else {
            throw new IllegalArgumentException("unknown database " + database);
        }
        boolean postgres = database.equals("postgres");
        // SQL_CLIENT_CONNECT_DELAY_MS: a pause before connecting, for a tracer that
        // decides on new processes a moment after they start.
        String delay = System.getenv("SQL_CLIENT_CONNECT_DELAY_MS");
        if (delay != null) {
            Thread.sleep(Long.parseLong(delay));
        }
        try (Connection conn = DriverManager.getConnection(url)) {
            String simple = "SELECT name FROM users WHERE id = 1";
            try (Statement st = conn.createStatement()) {
                for (int i = 0; i < n; i++) {
                    long start = nowNs();
                    try (ResultSet rs = st.executeQuery(simple)) {
                        rs.next();
                    }
                    emit("simple", simple, "", start, 1);
                }
            }

            String prepared = "SELECT name FROM users WHERE id = ?";
            try (PreparedStatement ps = conn.prepareStatement(prepared)) {
                for (int i = 0; i < n; i++) {
                    long start = nowNs();
                    ps.setInt(1, 1 + i % 3);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                    }
                    emit("prepared", postgres ? prepared.replace("?", "$1") : prepared, "", start, 1);
                }
            }

            String failing = "SELECT id FROM missing_table";
            try (Statement st = conn.createStatement()) {
                for (int i = 0; i < n; i++) {
                    long start = nowNs();
                    try {
                        st.executeQuery(failing);
                        throw new IllegalStateException("the failing statement succeeded");
                    } catch (SQLException e) {
                        code = postgres ? e.getSQLState() : Integer.toString(e.getErrorCode());
                    }
                    emit("failing", failing, code, start, 1);
                }
            }

            String insert = "INSERT INTO events (id, note) VALUES (?, ?)";
            try (PreparedStatement ps = conn.prepareStatement(insert)) {
                for (int i = 0; i < n; i++) {
                    ps.setInt(1, 5000 + i);
                    ps.setString(2, "java batch");
                    ps.addBatch();
                }
                long start = nowNs();
                ps.executeBatch();
                if (postgres) {
                    emit("pipelined", "INSERT INTO events (id, note) VALUES ($1, $2)", "", start, n);
                } else {
                    // Connector/J sends the whole batch as one COM_STMT_BULK_EXECUTE.
                    emit("bulk", insert, "", start, 1);
                }
            }
        }
    }
}
