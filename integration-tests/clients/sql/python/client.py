"""Runs the SQL scenario of the database tests with Python drivers: psycopg 3
(on the system's libpq) for PostgreSQL, PyMySQL for MySQL/MariaDB.

Usage: client.py postgres|mysql HOST PORT N [tls]

One connection; N statements of each kind (see ../README.md); prints one JSON
line per statement sent (kind, text, error code, wall-clock window).
"""

import json
import os
import sys
import time


def emit(kind, sql, error, start, count=1):
    line = {"kind": kind, "sql": sql, "error": error, "start_ns": start,
            "end_ns": time.time_ns(), "count": count}
    print(json.dumps(line), flush=True)


def wait_before_connect():
    """SQL_CLIENT_CONNECT_DELAY_MS: a pause with the driver (and its TLS library)
    loaded but nothing sent yet, for a tracer that decides on new processes (and
    attaches to their libraries) a moment after they start."""
    time.sleep(int(os.environ.get("SQL_CLIENT_CONNECT_DELAY_MS", "0")) / 1000)


def postgres(host, port, n, tls):
    import psycopg

    wait_before_connect()
    conn = psycopg.connect(host=host, port=port, user="beyla", dbname="beyla",
                           sslmode="require" if tls else "disable", autocommit=True)
    simple = "SELECT name FROM users WHERE id = 1"
    for _ in range(n):
        start = time.time_ns()
        conn.execute(simple).fetchone()
        emit("simple", simple, "", start)

    prepared = "SELECT name FROM users WHERE id = %s"
    for i in range(n):
        start = time.time_ns()
        conn.execute(prepared, (1 + i % 3,), prepare=True).fetchone()
        emit("prepared", prepared.replace("%s", "$1"), "", start)

    failing = "SELECT id FROM missing_table"
    for _ in range(n):
        start = time.time_ns()
        try:
            conn.execute(failing)
            raise SystemExit("the failing statement succeeded")
        except psycopg.errors.UndefinedTable as e:
            emit("failing", failing, e.sqlstate, start)

    insert = "INSERT INTO events (id, note) VALUES (%s, %s)"
    start = time.time_ns()
    with conn.pipeline():
        cur = conn.cursor()
        for i in range(n):
            cur.execute(insert, (3000 + i, "python pipeline"))
    emit("pipelined", insert.replace("%s", "$1", 1).replace("%s", "$2"), "", start, n)

    copy = "COPY events (id, note) FROM STDIN"
    start = time.time_ns()
    with conn.cursor().copy(copy) as out:
        for i in range(n):
            out.write_row((4000 + i, "python copy"))
    emit("copy", copy, "", start)
    conn.close()


def mysql(host, port, n):
    import pymysql

    wait_before_connect()
    conn = pymysql.connect(host=host, port=port, user="beyla", password="beyla",
                           database="beyla", autocommit=True,
                           client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    cur = conn.cursor()
    simple = "SELECT name FROM users WHERE id = 1"
    for _ in range(n):
        start = time.time_ns()
        cur.execute(simple)
        cur.fetchall()
        emit("simple", simple, "", start)

    # PyMySQL has no server-side prepared statements: it sends the statement
    # with the parameters written in as literals.
    parameterised = "SELECT name FROM users WHERE id = %s"
    for i in range(n):
        start = time.time_ns()
        cur.execute(parameterised, (1 + i % 3,))
        cur.fetchall()
        emit("parameterised", cur._executed, "", start)

    failing = "SELECT id FROM missing_table"
    for _ in range(n):
        start = time.time_ns()
        try:
            cur.execute(failing)
            raise SystemExit("the failing statement succeeded")
        except pymysql.err.ProgrammingError as e:
            emit("failing", failing, str(e.args[0]), start)

    multi = "; ".join(f"INSERT INTO events (id, note) VALUES ({3000 + i}, 'python multi')"
                      for i in range(n))
    start = time.time_ns()
    cur.execute(multi)
    while cur.nextset():
        pass
    emit("multi", multi, "", start)
    conn.close()


def main():
    database, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tls = len(sys.argv) > 5 and sys.argv[5] == "tls"
    if database == "postgres":
        postgres(host, port, n, tls)
    elif database == "mysql":
        mysql(host, port, n)
    else:
        raise SystemExit(f"unknown database {database!r}")


if __name__ == "__main__":
    main()
