<?php
// Sample HTTP/1.1 service for the VM tests, in plain PHP: the router script of
// `php -S` and the front controller php-fpm runs behind nginx (nginx.conf.in).
// Same API as the other apps; see ../README.md.

function reply(int $status, string $body, string $type = 'text/plain'): void
{
    http_response_code($status);
    header("Content-Type: $type");
    header('Content-Length: ' . strlen($body));
    echo $body;
}

// One GET over a new connection with PHP's curl extension (libcurl).
function downstream(): void
{
    $url = getenv('DOWNSTREAM_URL');
    if ($url === false || $url === '') {
        reply(500, 'DOWNSTREAM_URL not set');
        return;
    }
    $curl = curl_init($url);
    curl_setopt_array($curl, [
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_FORBID_REUSE => true,
        CURLOPT_FRESH_CONNECT => true,
        CURLOPT_PROXY => '',
        CURLOPT_TIMEOUT => 10,
    ]);
    $ok = curl_exec($curl) !== false;
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    curl_close($curl);
    if ($ok) {
        reply(200, "downstream $status");
    } else {
        reply(502, 'downstream error');
    }
}

// Flushes one chunk: with no Content-Length the SAPI sends the body chunked.
function chunked(): void
{
    http_response_code(200);
    header('Content-Type: text/plain');
    foreach (['part1;', 'part2;', 'part3'] as $part) {
        echo $part;
        flush();
    }
}

$method = $_SERVER['REQUEST_METHOD'];
$path = explode('?', $_SERVER['REQUEST_URI'], 2)[0];
// The whole body is read, as in the other apps.
$body = file_get_contents('php://input');
$get = $method === 'GET';
$user = str_starts_with($path, '/users/') ? substr($path, strlen('/users/')) : '';

if ($get && $path === '/health') {
    reply(200, 'ok');
} elseif ($get && $user !== '' && !str_contains($user, '/')) {
    reply(200, json_encode(['id' => $user]), 'application/json');
} elseif ($method === 'POST' && $path === '/users') {
    reply(201, json_encode(['received' => strlen($body)]), 'application/json');
} elseif ($get && $path === '/error') {
    reply(500, 'error');
} elseif ($get && $path === '/chunked') {
    chunked();
} elseif ($get && $path === '/downstream') {
    downstream();
} else {
    reply(404, 'not found');
}
