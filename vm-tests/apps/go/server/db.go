package main

// The /db endpoints: one statement against PostgreSQL (pgx), MySQL/MariaDB
// (database/sql with go-sql-driver/mysql) or Redis (go-redis), each over a
// new connection, so the agent sees the database calls an HTTP request makes.
// The servers are named by POSTGRES_ADDR, MYSQL_ADDR and REDIS_ADDR
// (host:port); user, password and database are all "beyla" (see ../../README.md).

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// The statement each SQL endpoint runs, and the Redis key it increments.
const (
	sqlStatement = "SELECT 42 AS answer"
	redisKey     = "beyla:hits"
	dbTimeout    = 10 * time.Second
	dbName       = "beyla"
)

// database answers /db/<store>; false if store is not one of ours.
func database(w http.ResponseWriter, store string) bool {
	query, ok := map[string]func(context.Context, string) (int64, error){
		"postgres": queryPostgres,
		"mysql":    queryMySQL,
		"redis":    queryRedis,
	}[store]
	if !ok {
		return false
	}
	variable := map[string]string{"postgres": "POSTGRES_ADDR", "mysql": "MYSQL_ADDR", "redis": "REDIS_ADDR"}[store]
	addr := os.Getenv(variable)
	if addr == "" {
		reply(w, 500, "text/plain", []byte(variable+" not set"))
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	n, err := query(ctx, addr)
	if err != nil {
		reply(w, 502, "text/plain", []byte(store+" error"))
		return true
	}
	reply(w, 200, "text/plain", []byte(fmt.Sprintf("%s %d", store, n)))
	return true
}

func queryPostgres(ctx context.Context, addr string) (int64, error) {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", dbName, addr, dbName))
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, sqlStatement).Scan(&n)
	return n, err
}

func queryMySQL(ctx context.Context, addr string) (int64, error) {
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s", dbName, dbName, addr, dbName))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, sqlStatement).Scan(&n)
	return n, err
}

func queryRedis(ctx context.Context, addr string) (int64, error) {
	// RESP2 and no CLIENT SETINFO: the connection sends our command only.
	client := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer client.Close()
	return client.Incr(ctx, redisKey).Result()
}
