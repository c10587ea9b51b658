#!/usr/bin/env node
// Makes N GET requests to URL over one keep-alive connection with node's
// http or https module (https: the OpenSSL linked into node, memory BIOs;
// the test's self-signed certificate is accepted), or each on a new
// connection with --new-connections.
//
// Usage: node client.js [--new-connections] URL N
//
// It starts once it has read a line on stdin, so a test can first see it
// traced. Prints one line per request, "<status> <start_ns> <end_ns>":
// wall-clock nanoseconds from before the request is sent to after its body
// is read.
'use strict';

const http = require('http');
const https = require('https');

const args = process.argv.slice(2);
const newConnections = args[0] === '--new-connections';
const [url, count] = newConnections ? args.slice(1) : args;
if (!url || !count) {
  console.error('usage: node client.js [--new-connections] URL N');
  process.exit(2);
}
const module_ = url.startsWith('https:') ? https : http;
// One socket, kept open between requests, or one closed after each.
const agent = new module_.Agent({ keepAlive: !newConnections, maxSockets: 1 });

function get(left) {
  if (left === 0) {
    agent.destroy();
    return;
  }
  const start = wallNs();
  module_
    .get(url, { agent, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => {
        process.stdout.write(`${res.statusCode} ${start} ${wallNs()}\n`);
        get(left - 1);
      });
    })
    .on('error', (e) => {
      console.error(`request failed: ${e.message}`);
      process.exit(1);
    });
}

// Wall-clock nanoseconds: the monotonic clock plus its epoch, measured once
// (to the millisecond: Date.now() is the only wall clock node has).
const epochNs = BigInt(Date.now()) * 1000000n - process.hrtime.bigint();
function wallNs() {
  return epochNs + process.hrtime.bigint();
}

process.stdin.once('data', () => {
  process.stdin.pause();
  get(Number(count));
});
