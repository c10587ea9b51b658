/* Makes N GET requests to URL with one libcurl easy handle (one keep-alive
 * connection); HTTPS through libcurl's OpenSSL, with the test's self-signed
 * certificate accepted. Build: ../build.sh
 *
 * Usage: curl-client URL N
 *
 * It starts once it has read a line on stdin, so a test can first see it
 * traced.
 * Prints one line per request, "<status> <start_ns> <end_ns>": wall-clock
 * nanoseconds from before the request is sent to after its body is read. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/** Seconds any one request may take. */
#define TIMEOUT_SECONDS 30L

static unsigned long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_nsec;
}

/* The body is read and dropped. */
static size_t discard(char *data, size_t size, size_t count, void *user) {
    (void)data;
    (void)user;
    return size * count;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: curl-client URL N\n");
        return 2;
    }
    long count = strtol(argv[2], NULL, 10);
    for (int c = getchar(); c != EOF && c != '\n'; c = getchar()) {
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    if (!curl) return 1;
    curl_easy_setopt(curl, CURLOPT_URL, argv[1]);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, TIMEOUT_SECONDS);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    for (long i = 0; i < count; i++) {
        unsigned long long start = now_ns();
        CURLcode result = curl_easy_perform(curl);
        if (result != CURLE_OK) {
            fprintf(stderr, "request failed: %s\n", curl_easy_strerror(result));
            return 1;
        }
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        printf("%ld %llu %llu\n", status, start, now_ns());
        fflush(stdout);
    }
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return 0;
}
