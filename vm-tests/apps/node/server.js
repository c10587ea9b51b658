#!/usr/bin/env node
// Sample HTTP/1.1 service for the VM tests (node standard library only, but
// for the database clients of the /db endpoints: pg, mysql2 and ioredis from
// package.json, installed by ../build-frameworks.sh and loaded when first used).
// Same API as the Python, Go and Java apps next to it; see ../README.md.
// Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] [TLS_CERT=cert.pem TLS_KEY=key.pem | H2C=1] node server.js
'use strict';

const fs = require('fs');
const http = require('http');
const http2 = require('http2');
const https = require('https');

const port = process.env.PORT;
if (!port) {
  console.error('PORT environment variable is required');
  process.exit(1);
}

function reply(res, status, body, type = 'text/plain') {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': buf.length });
  res.end(buf);
}

function chunked(res) {
  // No Content-Length on an HTTP/1.1 response => node uses chunked transfer encoding.
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  const parts = ['part1;', 'part2;', 'part3'];
  // Node merges writes made in the same tick into one syscall, so send one chunk per tick.
  const next = () => {
    res.write(parts.shift());
    if (parts.length) setImmediate(next);
    else setImmediate(() => res.end());
  };
  next();
}

function downstream(res) {
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
}

// What each /db endpoint runs: the statement, and the Redis key it increments.
const SQL_STATEMENT = 'SELECT 42 AS answer';
const REDIS_KEY = 'beyla:hits';
const DB_NAME = 'beyla'; // the user, password and database of both SQL servers
const DB_TIMEOUT_MS = 10000;

// One statement over a new connection; resolves to the number it returns.
const DATABASES = {
  postgres: ['POSTGRES_ADDR', async (host, port) => {
    const { Client } = require('pg');
    const client = new Client({ host, port, user: DB_NAME, database: DB_NAME, connectionTimeoutMillis: DB_TIMEOUT_MS });
    await client.connect();
    try {
      return (await client.query(SQL_STATEMENT)).rows[0].answer;
    } finally {
      await client.end();
    }
  }],
  mysql: ['MYSQL_ADDR', async (host, port) => {
    const mysql = require('mysql2/promise');
    const conn = await mysql.createConnection({
      host, port, user: DB_NAME, password: DB_NAME, database: DB_NAME, connectTimeout: DB_TIMEOUT_MS,
    });
    try {
      const [rows] = await conn.query(SQL_STATEMENT);
      return rows[0].answer;
    } finally {
      await conn.end();
    }
  }],
  redis: ['REDIS_ADDR', async (host, port) => {
    const Redis = require('ioredis');
    // No ready check (an INFO at connect): the connection carries our command only.
    const client = new Redis({ host, port, enableReadyCheck: false, lazyConnect: true, connectTimeout: DB_TIMEOUT_MS });
    await client.connect();
    try {
      return await client.incr(REDIS_KEY);
    } finally {
      client.disconnect();
    }
  }],
};

function database(res, store) {
  const [variable, query] = DATABASES[store];
  const addr = process.env[variable];
  if (!addr) return reply(res, 500, `${variable} not set`);
  const at = addr.lastIndexOf(':');
  query(addr.slice(0, at), Number(addr.slice(at + 1))).then(
    (n) => reply(res, 200, `${store} ${n}`),
    () => reply(res, 502, `${store} error`),
  );
}

function handle(req, res) {
  const path = req.url.split('?')[0];
  const get = req.method === 'GET';
  const user = /^\/users\/([^/]+)$/.exec(path);
  if (get && path === '/health') return reply(res, 200, 'ok');
  if (get && user) return reply(res, 200, JSON.stringify({ id: user[1] }), 'application/json');
  if (req.method === 'POST' && path === '/users') {
    let received = 0;
    req.on('data', (chunk) => (received += chunk.length));
    req.on('end', () => reply(res, 201, JSON.stringify({ received }), 'application/json'));
    return;
  }
  if (get && path === '/error') return reply(res, 500, 'error');
  if (get && path === '/chunked') return chunked(res);
  if (get && path === '/downstream') return downstream(res);
  const store = path.startsWith('/db/') ? path.slice('/db/'.length) : '';
  if (get && Object.hasOwn(DATABASES, store)) return database(res, store);
  reply(res, 404, 'not found');
}

// HTTPS when given a certificate: the same API over TLS (OpenSSL linked into node).
// H2C=1: HTTP/2 over plain TCP (prior knowledge), node's http2 with its
// request/response compatibility API, for the HTTP/2 tests.
let server;
if (process.env.TLS_CERT) {
  server = https.createServer(
    { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) },
    handle,
  );
} else if (process.env.H2C) {
  server = http2.createServer(handle);
} else {
  server = http.createServer(handle);
}

server.listen(Number(port), '127.0.0.1', () => {
  // stdout to a pipe or file is synchronous in node, so this line is flushed right away.
  process.stdout.write(`listening on ${server.address().port}\n`);
});
