// Drives a Redis server with ioredis (RESP3, its default) and prints one line per command.
//
// Usage: node redis_client.js HOST:PORT N
//
// The same operations as the other Redis clients: N SET and GET, a pipeline of
// N INCR, N failing LPUSH (WRONGTYPE) and INCR (ERR), N MULTI/EXEC
// transactions, then pub/sub: SUBSCRIBE on a second connection, N PUBLISH, N
// messages read. Lines: "sent COMMAND ok", "sent COMMAND error PREFIX",
// "received message CHANNEL". It starts once it reads a line on standard input:
// a test sends it when the agent traces the process.
"use strict";

const Redis = require("ioredis");

// Every client selects this database, so spans carry db.namespace.
const DATABASE = 1;

function sent(name, error) {
  if (error) {
    console.log(`sent ${name} error ${String(error.message).split(" ")[0]}`);
  } else {
    console.log(`sent ${name} ok`);
  }
}

async function call(name, promise) {
  try {
    await promise;
    sent(name);
  } catch (error) {
    sent(name, error);
  }
}

async function main() {
  await new Promise((resolve) => process.stdin.once("data", resolve));
  process.stdin.destroy();
  const [host, port] = process.argv[2].split(":");
  const count = Number(process.argv[3]);
  const options = { host, port: Number(port), db: DATABASE, enableReadyCheck: false, lazyConnect: true };
  const client = new Redis(options);
  await client.connect();
  await call("PING", client.ping());

  for (let i = 0; i < count; i++) {
    await call("SET", client.set(`kv:${i}`, `v${i}`));
    await call("GET", client.get(`kv:${i}`));
  }

  const pipeline = client.pipeline();
  for (let i = 0; i < count; i++) pipeline.incr("kv:counter");
  for (const [error] of await pipeline.exec()) sent("INCR", error);

  for (let i = 0; i < count; i++) {
    await call("LPUSH", client.lpush("kv:0", "x"));
    await call("INCR", client.incr("kv:0"));
  }

  for (let i = 0; i < count; i++) {
    await client.multi().set("kv:tx", "1").incr("kv:tx").exec();
    for (const name of ["MULTI", "SET", "INCR", "EXEC"]) sent(name);
  }

  const subscriber = new Redis(options);
  await subscriber.connect();
  let received = 0;
  const done = new Promise((resolve) => {
    subscriber.on("message", (channel) => {
      console.log(`received message ${channel}`);
      received += 1;
      if (received === count) resolve();
    });
  });
  await call("SUBSCRIBE", subscriber.subscribe("kv:events"));
  for (let i = 0; i < count; i++) await call("PUBLISH", client.publish("kv:events", `event ${i}`));
  await done;
  subscriber.disconnect();
  client.disconnect();
}

main().catch((error) => {
  console.error("redis_client:", error);
  process.exit(1);
});
