<?php
// Makes N GET requests to URL with one curl handle (PHP's curl extension,
// libcurl: one keep-alive connection); HTTPS through libcurl's OpenSSL, with
// the test's self-signed certificate accepted.
//
// Usage: php client.php URL N
//
// It starts once it has read a line on stdin (after its extensions are
// loaded), so a test can first see it traced.
// Prints one line per request, "<status> <start_ns> <end_ns>": wall-clock
// nanoseconds (to the microsecond) from before the request is sent to after
// its body is read.

if ($argc !== 3) {
    fwrite(STDERR, "usage: php client.php URL N\n");
    exit(2);
}
[, $url, $count] = $argv;

function now_ns(): string
{
    return sprintf('%d000', (int) (microtime(true) * 1e6));
}

fgets(STDIN);
$curl = curl_init($url);
curl_setopt_array($curl, [
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_PROXY => '',
    CURLOPT_TIMEOUT => 30,
    CURLOPT_SSL_VERIFYPEER => false,
    CURLOPT_SSL_VERIFYHOST => 0,
]);
for ($i = 0; $i < (int) $count; $i++) {
    $start = now_ns();
    if (curl_exec($curl) === false) {
        fwrite(STDERR, 'request failed: ' . curl_error($curl) . "\n");
        exit(1);
    }
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    echo "$status $start " . now_ns() . "\n";
}
curl_close($curl);
