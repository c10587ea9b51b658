#!/usr/bin/env node
// Sample HTTP/1.1 service for the VM tests, on Express 5 (package.json; ../build.sh
// runs `npm ci` here). Same API as the other apps next to it; see ../README.md.
// Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] node server.js
'use strict';

const http = require('http');
const express = require('express');

const port = process.env.PORT;
if (!port) {
  console.error('PORT environment variable is required');
  process.exit(1);
}

const app = express();
// Express's defaults add headers the other apps do not send: X-Powered-By, and
// an ETag (with 304 answers to If-None-Match) on every res.send.
app.disable('x-powered-by');
app.disable('etag');
// Routes match as in the other apps: /health/ and /HEALTH are not /health.
app.enable('strict routing');
app.enable('case sensitive routing');

// res.set('Content-Type') and res.send(string) append "; charset=utf-8" to the
// type; node's setHeader and a Buffer keep it as the other apps send it.
// res.send sets Content-Length.
function reply(res, status, body, type = 'text/plain') {
  res.status(status);
  res.setHeader('Content-Type', type);
  res.send(Buffer.from(body));
}

function notFound(req, res) {
  reply(res, 404, 'not found');
}

// Express answers HEAD with every GET route; the other apps answer 404.
app.use((req, res, next) => (req.method === 'HEAD' ? notFound(req, res) : next()));

app.get('/health', (req, res) => reply(res, 200, 'ok'));

app.get('/users/:id', (req, res) => {
  // The raw path segment, as the other apps answer (req.params.id is percent-decoded).
  const id = req.path.slice('/users/'.length);
  reply(res, 200, JSON.stringify({ id }), 'application/json');
});

app.post('/users', (req, res) => {
  // No body-parser: count the bytes as they arrive (node has removed any chunked framing).
  let received = 0;
  req.on('data', (chunk) => (received += chunk.length));
  req.on('end', () => reply(res, 201, JSON.stringify({ received }), 'application/json'));
});

app.get('/error', (req, res) => reply(res, 500, 'error'));

app.get('/chunked', (req, res) => {
  // No Content-Length on an HTTP/1.1 response => node uses chunked transfer encoding.
  res.status(200);
  res.setHeader('Content-Type', 'text/plain');
  const parts = ['part1;', 'part2;', 'part3'];
  // Node merges writes made in the same tick into one syscall, so send one chunk per tick.
  const next = () => {
    res.write(parts.shift());
    if (parts.length) setImmediate(next);
    else setImmediate(() => res.end());
  };
  next();
});

app.get('/downstream', (req, res) => {
  const url = process.env.DOWNSTREAM_URL;
  if (!url) return reply(res, 500, 'DOWNSTREAM_URL not set');
  // agent:false => a new connection for this call (node 20's global agent keeps connections alive).
  http
    .get(url, { agent: false }, (down) => {
      down.resume(); // read (and drop) the whole body before answering
      down.on('end', () => reply(res, 200, `downstream ${down.statusCode}`));
    })
    .on('error', () => {
      if (!res.headersSent) reply(res, 502, 'downstream error');
    });
});

// Everything else, wrong methods included (Express has no 405): 404.
app.use(notFound);

const server = http.createServer(app);
server.listen(Number(port), '127.0.0.1', () => {
  // stdout to a pipe or file is synchronous in node, so this line is flushed right away.
  process.stdout.write(`listening on ${server.address().port}\n`);
});
