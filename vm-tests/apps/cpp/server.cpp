// Sample HTTP/1.1 service for the VM tests, on cpp-httplib (Debian's
// libcpp-httplib-dev, built with OpenSSL for HTTPS). Same API as the other
// apps; see ../README.md. Build: ../build.sh
// Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] [TLS_CERT=cert.pem TLS_KEY=key.pem] target/apps/cpp-server
//
// Debian builds cpp-httplib as a shared library, so its compile-time limits
// are fixed: a request header line of at most 8 KiB (a longer one is
// answered 400) and a listen backlog of 5. What is settable at run time is
// raised: requests per connection (5) and pool threads (8).
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

/// Requests one connection may carry; far more than any test sends.
constexpr size_t KEEP_ALIVE_MAX_REQUESTS = 100000;
/// Connections served at once (each keep-alive connection holds a thread).
constexpr size_t POOL_THREADS = 64;

const char *env(const char *name) {
    const char *value = std::getenv(name);
    return value && *value ? value : nullptr;
}

void reply(httplib::Response &res, int status, const std::string &body,
           const char *type = "text/plain") {
    res.status = status;
    res.set_content(body, type);
}

/// One GET over a new connection (a new client per call), on this thread.
void downstream(httplib::Response &res) {
    const char *url = env("DOWNSTREAM_URL");
    if (!url) return reply(res, 500, "DOWNSTREAM_URL not set");
    std::string u(url);
    const std::string scheme = "http://";
    if (u.rfind(scheme, 0) != 0) return reply(res, 502, "downstream error");
    auto slash = u.find('/', scheme.size());
    std::string host_port = u.substr(scheme.size(), slash - scheme.size());
    std::string path = slash == std::string::npos ? "/" : u.substr(slash);
    httplib::Client client("http://" + host_port);
    client.set_keep_alive(false);
    auto answer = client.Get(path.c_str());
    if (!answer) return reply(res, 502, "downstream error");
    reply(res, 200, "downstream " + std::to_string(answer->status));
}

void route(const httplib::Request &req, httplib::Response &res) {
    const std::string &path = req.path;
    const bool get = req.method == "GET";
    const std::string users = "/users/";
    std::string user = path.rfind(users, 0) == 0 ? path.substr(users.size()) : "";
    if (get && path == "/health") return reply(res, 200, "ok");
    if (get && !user.empty() && user.find('/') == std::string::npos)
        return reply(res, 200, "{\"id\":\"" + user + "\"}", "application/json");
    if (req.method == "POST" && path == "/users")
        return reply(res, 201, "{\"received\":" + std::to_string(req.body.size()) + "}",
                     "application/json");
    if (get && path == "/error") return reply(res, 500, "error");
    if (get && path == "/chunked") {
        // One chunk per call of the provider: cpp-httplib writes each at once.
        res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink &sink) {
            static const char *const parts[] = {"part1;", "part2;", "part3"};
            size_t index = offset == 0 ? 0 : offset == 6 ? 1 : 2;
            sink.write(parts[index], std::strlen(parts[index]));
            if (index == 2) sink.done();
            return true;
        });
        return;
    }
    if (get && path == "/downstream") return downstream(res);
    reply(res, 404, "not found");
}

}  // namespace

int main() {
    const char *port = env("PORT");
    if (!port) {
        std::fprintf(stderr, "PORT environment variable is required\n");
        return 1;
    }
    std::unique_ptr<httplib::Server> server;
    if (const char *cert = env("TLS_CERT")) {
        const char *key = env("TLS_KEY");
        server = std::make_unique<httplib::SSLServer>(cert, key ? key : "");
    } else {
        server = std::make_unique<httplib::Server>();
    }
    if (!server->is_valid()) {
        std::fprintf(stderr, "cannot load TLS_CERT / TLS_KEY\n");
        return 1;
    }
    // SO_REUSEADDR, as other servers set it: cpp-httplib's default is
    // SO_REUSEPORT alone, which cannot bind a port that another server's
    // closed connections still hold in TIME_WAIT.
    server->set_socket_options([](socket_t sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server->set_keep_alive_max_count(KEEP_ALIVE_MAX_REQUESTS);
    server->new_task_queue = [] { return new httplib::ThreadPool(POOL_THREADS); };
    // Every method and path goes through one router, as in the other apps.
    const char *any = R"(/.*)";
    server->Get(any, route);
    server->Post(any, route);
    server->Put(any, route);
    server->Delete(any, route);
    server->Patch(any, route);
    int bound = std::atoi(port) == 0 ? server->bind_to_any_port("127.0.0.1")
                                     : (server->bind_to_port("127.0.0.1", std::atoi(port))
                                            ? std::atoi(port)
                                            : -1);
    if (bound < 0) {
        std::fprintf(stderr, "cannot listen on 127.0.0.1:%s\n", port);
        return 1;
    }
    std::printf("listening on %d\n", bound);
    std::fflush(stdout);
    return server->listen_after_bind() ? 0 : 1;
}
