// Sample HTTP/1.1 service for the VM tests (JDK only: com.sun.net.httpserver;
// the /db endpoints are in Db.java, with the database clients, loaded when
// first asked). Same API as the Python, Node and Go apps next to it; see ../README.md.
// Build: ../build.sh   Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] java -cp 'target/apps/java:target/apps/java/lib/*' App

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Method;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.Executors;

public class App {
    public static void main(String[] args) throws IOException {
        String port = System.getenv("PORT");
        if (port == null || port.isEmpty()) {
            System.err.println("PORT environment variable is required");
            System.exit(1);
        }
        // Downstream calls: HttpURLConnection must not pool connections, each call gets a new one.
        System.setProperty("http.keepAlive", "false");
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(port)), 128);
        server.createContext("/", App::handle);
        // The default executor runs every exchange on the single dispatcher thread; a cached pool
        // gives each concurrent connection its own thread.
        server.setExecutor(Executors.newCachedThreadPool());
        server.start();
        System.out.println("listening on " + server.getAddress().getPort());
        System.out.flush();
    }

    static void handle(HttpExchange ex) throws IOException {
        try {
            String path = ex.getRequestURI().getRawPath();
            String method = ex.getRequestMethod();
            boolean get = method.equals("GET");
            String id = path.startsWith("/users/") ? path.substring("/users/".length()) : "";
            if (get && path.equals("/health")) {
                reply(ex, 200, "text/plain", "ok");
            } else if (get && !id.isEmpty() && !id.contains("/")) {
                reply(ex, 200, "application/json", "{\"id\":" + jsonString(id) + "}");
            } else if (method.equals("POST") && path.equals("/users")) {
                int received = ex.getRequestBody().readAllBytes().length;
                reply(ex, 201, "application/json", "{\"received\":" + received + "}");
            } else if (get && path.equals("/error")) {
                reply(ex, 500, "text/plain", "error");
            } else if (get && path.equals("/chunked")) {
                chunked(ex);
            } else if (get && path.equals("/downstream")) {
                downstream(ex);
            } else if (get && DATABASES.containsKey(path)) {
                database(ex, path.substring("/db/".length()), DATABASES.get(path));
            } else {
                reply(ex, 404, "text/plain", "not found");
            }
        } finally {
            ex.close(); // also drains any unread request body, so keep-alive stays in sync
        }
    }

    /** The /db endpoints and the variable naming each one's server (host:port). */
    static final Map<String, String> DATABASES = Map.of(
            "/db/postgres", "POSTGRES_ADDR", "/db/mysql", "MYSQL_ADDR", "/db/redis", "REDIS_ADDR");

    static void database(HttpExchange ex, String store, String variable) throws IOException {
        String addr = System.getenv(variable);
        if (addr == null || addr.isEmpty()) {
            reply(ex, 500, "text/plain", variable + " not set");
            return;
        }
        long n;
        try {
            // Db and its clients are on the class path only when built (build-frameworks.sh).
            Method query = Class.forName("Db").getMethod("query", String.class, String.class);
            n = (Long) query.invoke(null, store, addr);
        } catch (ReflectiveOperationException | LinkageError e) {
            reply(ex, 502, "text/plain", store + " error");
            return;
        }
        reply(ex, 200, "text/plain", store + " " + n);
    }

    static void reply(HttpExchange ex, int status, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", contentType);
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.sendResponseHeaders(status, -1); // headers only (a length here makes the JDK log a warning)
            return;
        }
        ex.sendResponseHeaders(status, bytes.length); // length > 0 => Content-Length header
        ex.getResponseBody().write(bytes);
    }

    static void chunked(HttpExchange ex) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/plain");
        ex.sendResponseHeaders(200, 0); // 0 => Transfer-Encoding: chunked
        OutputStream out = ex.getResponseBody();
        for (String part : new String[] {"part1;", "part2;", "part3"}) {
            out.write(part.getBytes(StandardCharsets.UTF_8));
            out.flush(); // one chunk per part; close() then writes the final 0-length chunk
        }
    }

    static void downstream(HttpExchange ex) throws IOException {
        String url = System.getenv("DOWNSTREAM_URL");
        if (url == null || url.isEmpty()) {
            reply(ex, 500, "text/plain", "DOWNSTREAM_URL not set");
            return;
        }
        // Blocking call on this handler thread; NO_PROXY so only the target host is contacted.
        int status;
        HttpURLConnection conn = (HttpURLConnection) URI.create(url).toURL().openConnection(Proxy.NO_PROXY);
        try {
            conn.setConnectTimeout(10_000);
            conn.setReadTimeout(10_000);
            status = conn.getResponseCode();
            InputStream in = status >= 400 ? conn.getErrorStream() : conn.getInputStream();
            if (in != null) {
                try (in) {
                    in.readAllBytes(); // read the full response before answering
                }
            }
        } catch (IOException e) {
            reply(ex, 502, "text/plain", "downstream error");
            return;
        } finally {
            conn.disconnect();
        }
        reply(ex, 200, "text/plain", "downstream " + status);
    }

    static String jsonString(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
