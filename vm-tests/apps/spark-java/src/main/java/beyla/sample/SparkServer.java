// Sample HTTP/1.1 service for the VM tests on Spark Java 2.9 (embedded Jetty 9.4).
// Same API as the other apps next to it; see ../README.md.
// Build: ../build.sh   Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] java -jar target/apps/spark-server.jar

package beyla.sample;

import static spark.Spark.awaitInitialization;
import static spark.Spark.before;
import static spark.Spark.get;
import static spark.Spark.halt;
import static spark.Spark.initExceptionHandler;
import static spark.Spark.ipAddress;
import static spark.Spark.notFound;
import static spark.Spark.port;
import static spark.Spark.post;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ThreadPool;
import spark.Request;
import spark.Response;
import spark.embeddedserver.EmbeddedServers;
import spark.embeddedserver.jetty.EmbeddedJettyFactory;
import spark.embeddedserver.jetty.JettyServerFactory;

public class SparkServer {
    public static void main(String[] args) {
        String port = System.getenv("PORT");
        if (port == null || port.isEmpty()) {
            System.err.println("PORT environment variable is required");
            System.exit(1);
        }
        // Downstream calls: HttpURLConnection must not pool connections, each call gets a new one.
        System.setProperty("http.keepAlive", "false");

        EmbeddedServers.add(EmbeddedServers.Identifiers.JETTY, new EmbeddedJettyFactory(new TunedJetty()));
        ipAddress("127.0.0.1");
        port(Integer.parseInt(port)); // 0: Spark picks a free port, port() tells which
        initExceptionHandler(e -> {
            System.err.println("cannot start: " + e);
            System.exit(1);
        });

        // Spark answers HEAD with every GET route; the other apps answer 404.
        before((req, res) -> {
            if (req.requestMethod().equals("HEAD")) {
                res.type("text/plain");
                halt(404, "not found");
            }
        });

        get("/health", (req, res) -> reply(res, 200, "text/plain", "ok"));
        get("/users/:id", (req, res) -> {
            // The raw path segment, as the other apps answer (req.params is percent-decoded).
            String id = req.raw().getRequestURI().substring("/users/".length());
            return reply(res, 200, "application/json", "{\"id\":" + jsonString(id) + "}");
        });
        post("/users", (req, res) -> {
            // Jetty has removed any chunked framing; bodyAsBytes reads the whole body.
            int received = req.bodyAsBytes().length;
            return reply(res, 201, "application/json", "{\"received\":" + received + "}");
        });
        get("/error", (req, res) -> reply(res, 500, "text/plain", "error"));
        get("/chunked", SparkServer::chunked);
        get("/downstream", SparkServer::downstream);
        // Unknown paths and known paths with another method (Spark has no 405).
        notFound((req, res) -> reply(res, 404, "text/plain", "not found"));

        awaitInitialization();
        System.out.println("listening on " + port());
        System.out.flush();
    }

    /** Makes the Jetty server Spark runs on, as Spark's own factory does, but a {@link TunedServer}. */
    static final class TunedJetty implements JettyServerFactory {
        @Override
        public Server create(int maxThreads, int minThreads, int threadTimeoutMillis) {
            ThreadPool pool = maxThreads > 0
                    ? new QueuedThreadPool(maxThreads, minThreads > 0 ? minThreads : 8,
                            threadTimeoutMillis > 0 ? threadTimeoutMillis : 60_000)
                    : null; // Jetty's default pool (up to 200 threads)
            return new TunedServer(pool);
        }

        @Override
        public Server create(ThreadPool threadPool) {
            return new TunedServer(threadPool);
        }
    }

    /**
     * Jetty with the limits of the other apps. Spark adds its connector after creating the
     * server and has no setting for these, so they are applied just before Jetty starts.
     */
    static final class TunedServer extends Server {
        TunedServer(ThreadPool pool) {
            super(pool);
        }

        @Override
        protected void doStart() throws Exception {
            for (Connector connector : getConnectors()) {
                HttpConnectionFactory http = connector.getConnectionFactory(HttpConnectionFactory.class);
                if (http != null) {
                    // Jetty's default is 8 KiB for the request line and all headers together,
                    // so one 8 KiB header got 431.
                    http.getHttpConfiguration().setRequestHeaderSize(64 * 1024);
                }
                if (connector instanceof ServerConnector) {
                    // Jetty asks for the JDK's default backlog of 50; 50 concurrent clients need more.
                    ((ServerConnector) connector).setAcceptQueueSize(128);
                }
            }
            super.doStart();
        }
    }

    /** Sets status, type and an exact Content-Length; Spark writes the returned body. */
    static String reply(Response res, int status, String contentType, String body) {
        res.status(status);
        res.type(contentType);
        // Spark flushes its output stream before closing it, which would make Jetty
        // commit the response without a length and send it chunked.
        res.raw().setContentLength(body.getBytes(StandardCharsets.UTF_8).length);
        return body;
    }

    static Object chunked(Request req, Response res) throws IOException {
        res.status(200);
        res.type("text/plain");
        // No Content-Length: Jetty commits the response chunked at the first flush.
        OutputStream out = res.raw().getOutputStream();
        for (String part : new String[] {"part1;", "part2;", "part3"}) {
            out.write(part.getBytes(StandardCharsets.UTF_8));
            out.flush(); // one chunk per part; Jetty writes the last, empty chunk at the end
        }
        // The response is committed, so Spark writes nothing more for this body.
        return "";
    }

    static Object downstream(Request req, Response res) {
        String url = System.getenv("DOWNSTREAM_URL");
        if (url == null || url.isEmpty()) {
            return reply(res, 500, "text/plain", "DOWNSTREAM_URL not set");
        }
        // Blocking call on this request's Jetty thread; NO_PROXY so only the target host is contacted.
        int status;
        HttpURLConnection conn = null;
        try {
            conn = (HttpURLConnection) URI.create(url).toURL().openConnection(Proxy.NO_PROXY);
            conn.setConnectTimeout(10_000);
            conn.setReadTimeout(10_000);
            status = conn.getResponseCode();
            InputStream in = status >= 400 ? conn.getErrorStream() : conn.getInputStream();
            if (in != null) {
                try (in) {
                    in.readAllBytes(); // read the full response before answering
                }
            }
        } catch (IOException | IllegalArgumentException e) {
            return reply(res, 502, "text/plain", "downstream error");
        } finally {
            if (conn != null) {
                conn.disconnect();
            }
        }
        return reply(res, 200, "text/plain", "downstream " + status);
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
