// Runs the SQL scenario of the database tests with Node.js drivers: pg for
// PostgreSQL, mysql2 for MySQL/MariaDB.
//
// Usage: node client.js postgres|mysql HOST PORT N [tls]
//
// One connection; N statements of each kind (see ../README.md); prints one
// JSON line per statement sent (kind, text, error code, wall-clock window).
"use strict";

const { performance } = require("node:perf_hooks");

/** Wall-clock nanoseconds, to the microsecond (Date.now() has milliseconds only). */
function nowNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

function emit(kind, sql, error, start, count = 1) {
  const end = nowNs();
  console.log(
    `{"kind":${JSON.stringify(kind)},"sql":${JSON.stringify(sql)},"error":${JSON.stringify(error)},` +
      `"start_ns":${start},"end_ns":${end},"count":${count}}`,
  );
}

/** SQL_CLIENT_CONNECT_DELAY_MS: a pause before connecting, for a tracer that decides on
 * new processes (and attaches to their libraries) a moment after they start. */
function waitBeforeConnect() {
  const ms = Number(process.env.SQL_CLIENT_CONNECT_DELAY_MS || 0);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function postgres(host, port, n, tls) {
  const { Client } = require("pg");
  await waitBeforeConnect();
  const client = new Client({
    host,
    port,
    user: "beyla",
    database: "beyla",
    ssl: tls ? { rejectUnauthorized: false } : false,
  });
  await client.connect();

  const simple = "SELECT name FROM users WHERE id = 1";
  for (let i = 0; i < n; i++) {
    const start = nowNs();
    await client.query(simple);
    emit("simple", simple, "", start);
  }

  const prepared = "SELECT name FROM users WHERE id = $1";
  for (let i = 0; i < n; i++) {
    const start = nowNs();
    await client.query({ name: "user_by_id", text: prepared, values: [1 + (i % 3)] });
    emit("prepared", prepared, "", start);
  }

  const failing = "SELECT id FROM missing_table";
  for (let i = 0; i < n; i++) {
    const start = nowNs();
    try {
      await client.query(failing);
      throw new Error("the failing statement succeeded");
    } catch (e) {
      if (!e.code) throw e;
      emit("failing", failing, e.code, start);
    }
  }

  // pg sends a query only once the previous one is answered: no pipelining.
  const insert = "INSERT INTO events (id, note) VALUES ($1, $2)";
  for (let i = 0; i < n; i++) {
    const start = nowNs();
    await client.query(insert, [6000 + i, "node insert"]);
    emit("parameterised", insert, "", start);
  }
  await client.end();
}

async function mysql(host, port, n) {
  const mysql2 = require("mysql2/promise");
  await waitBeforeConnect();
  const conn = await mysql2.createConnection({
    host,
    port,
    user: "beyla",
    password: "beyla",
    database: "beyla",
    multipleStatements: true,
  });

  const simple = "SELECT name FROM users WHERE id = 1";
  for (let i = 0; i < n; i++) {
    const start = nowNs();
    await conn.query(simple);
    emit("simple", simple, "", start);
  }

  // execute() prepares the statement once per connection (COM_STMT_PREPARE)
  // and runs it with COM_STMT_EXECUTE.
  const prepared = "SELECT name FROM users WHERE id = ?";
  for (let i = 0; i < n; i++) {
    const start = nowNs();
    await conn.execute(prepared, [1 + (i % 3)]);
    emit("prepared", prepared, "", start);
  }

  const failing = "SELECT id FROM missing_table";
  for (let i = 0; i < n; i++) {
    const start = nowNs();
    try {
      await conn.query(failing);
      throw new Error("the failing statement succeeded");
    } catch (e) {
      if (!e.errno) throw e;
      emit("failing", failing, String(e.errno), start);
    }
  }

  const parts = [];
  for (let i = 0; i < n; i++) {
    parts.push(`INSERT INTO events (id, note) VALUES (${6000 + i}, 'node multi')`);
  }
  const multi = parts.join("; ");
  const start = nowNs();
  await conn.query(multi);
  emit("multi", multi, "", start);
  await conn.end();
}

async function main() {
  const [database, host, port, count, tls] = process.argv.slice(2);
  const n = Number(count);
  if (database === "postgres") {
    await postgres(host, Number(port), n, tls === "tls");
  } else if (database === "mysql") {
    await mysql(host, Number(port), n);
  } else {
    throw new Error(`unknown database ${database}`);
  }
}

main().catch((e) => {
  console.error("client.js:", e);
  process.exit(1);
});
