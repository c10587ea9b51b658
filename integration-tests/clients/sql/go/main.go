// Runs the SQL scenario of the database tests with Go drivers: pgx for
// PostgreSQL, database/sql with go-sql-driver/mysql for MySQL/MariaDB.
//
// Usage: sqlclient postgres|mysql HOST PORT N [tls]
//
// One connection; N statements of each kind (see ../README.md); prints one
// JSON line per statement sent (kind, text, error code, wall-clock window).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type record struct {
	Kind    string `json:"kind"`
	SQL     string `json:"sql"`
	Error   string `json:"error"`
	StartNs int64  `json:"start_ns"`
	EndNs   int64  `json:"end_ns"`
	Count   int    `json:"count"`
}

func emit(kind, text, code string, start time.Time, count int) {
	line, _ := json.Marshal(record{kind, text, code, start.UnixNano(), time.Now().UnixNano(), count})
	fmt.Println(string(line))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sqlclient:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 5 {
		fail(errors.New("usage: sqlclient postgres|mysql HOST PORT N [tls]"))
	}
	n, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fail(err)
	}
	tls := len(os.Args) > 5 && os.Args[5] == "tls"
	// SQL_CLIENT_CONNECT_DELAY_MS: a pause before connecting, for a tracer that
	// decides on new processes a moment after they start.
	if ms, err := strconv.Atoi(os.Getenv("SQL_CLIENT_CONNECT_DELAY_MS")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	switch os.Args[1] {
	case "postgres":
		postgres(os.Args[2], os.Args[3], n, tls)
	case "mysql":
		mysqlScenario(os.Args[2], os.Args[3], n)
	default:
		fail(fmt.Errorf("unknown database %q", os.Args[1]))
	}
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	fail(err)
	return ""
}

func postgres(host, port string, n int, tls bool) {
	ctx := context.Background()
	mode := "disable"
	if tls {
		mode = "require"
	}
	dsn := fmt.Sprintf("postgres://beyla@%s:%s/beyla?sslmode=%s", host, port, mode)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		fail(err)
	}
	defer conn.Close(ctx)

	const simple = "SELECT name FROM users WHERE id = 1"
	for i := 0; i < n; i++ {
		start := time.Now()
		var name string
		if err := conn.QueryRow(ctx, simple, pgx.QueryExecModeSimpleProtocol).Scan(&name); err != nil {
			fail(err)
		}
		emit("simple", simple, "", start, 1)
	}

	const prepared = "SELECT name FROM users WHERE id = $1"
	if _, err := conn.Prepare(ctx, "user_by_id", prepared); err != nil {
		fail(err)
	}
	for i := 0; i < n; i++ {
		start := time.Now()
		var name string
		if err := conn.QueryRow(ctx, "user_by_id", 1+i%3).Scan(&name); err != nil {
			fail(err)
		}
		emit("prepared", prepared, "", start, 1)
	}

	const failing = "SELECT id FROM missing_table"
	for i := 0; i < n; i++ {
		start := time.Now()
		_, err := conn.Exec(ctx, failing, pgx.QueryExecModeSimpleProtocol)
		emit("failing", failing, pgCode(err), start, 1)
	}

	const insert = "INSERT INTO events (id, note) VALUES ($1, $2)"
	batch := &pgx.Batch{}
	for i := 0; i < n; i++ {
		batch.Queue(insert, 1000+i, "go batch")
	}
	start := time.Now()
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		fail(err)
	}
	emit("pipelined", insert, "", start, n)

	start = time.Now()
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{2000 + i, "go copy"}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"id", "note"}, pgx.CopyFromRows(rows)); err != nil {
		fail(err)
	}
	// The statement pgx sends for CopyFrom.
	emit("copy", `copy "events" ( "id", "note" ) from stdin binary;`, "", start, 1)
}

func mysqlCode(err error) string {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return strconv.Itoa(int(myErr.Number))
	}
	fail(err)
	return ""
}

func mysqlScenario(host, port string, n int) {
	ctx := context.Background()
	dsn := fmt.Sprintf("beyla:beyla@tcp(%s:%s)/beyla?multiStatements=true", host, port)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	// One connection, so that each statement below is on it.
	conn, err := db.Conn(ctx)
	if err != nil {
		fail(err)
	}
	defer conn.Close()

	const simple = "SELECT name FROM users WHERE id = 1"
	for i := 0; i < n; i++ {
		start := time.Now()
		var name string
		if err := conn.QueryRowContext(ctx, simple).Scan(&name); err != nil {
			fail(err)
		}
		emit("simple", simple, "", start, 1)
	}

	const prepared = "SELECT name FROM users WHERE id = ?"
	stmt, err := conn.PrepareContext(ctx, prepared)
	if err != nil {
		fail(err)
	}
	for i := 0; i < n; i++ {
		start := time.Now()
		var name string
		if err := stmt.QueryRowContext(ctx, 1+i%3).Scan(&name); err != nil {
			fail(err)
		}
		emit("prepared", prepared, "", start, 1)
	}
	stmt.Close()

	const failing = "SELECT id FROM missing_table"
	for i := 0; i < n; i++ {
		start := time.Now()
		_, err := conn.ExecContext(ctx, failing)
		emit("failing", failing, mysqlCode(err), start, 1)
	}

	// The protocol has no pipelining; several statements in one COM_QUERY
	// (CLIENT_MULTI_STATEMENTS) are the closest.
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("INSERT INTO events (id, note) VALUES (%d, 'go multi')", 1000+i)
	}
	multi := strings.Join(parts, "; ")
	start := time.Now()
	if _, err := conn.ExecContext(ctx, multi); err != nil {
		fail(err)
	}
	emit("multi", multi, "", start, 1)
}
