package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// readFloor is the work of the read floor per request: the signature
// floor's one ES256 verification, then one primary-key read of a balance
// through a pool sized like the service's.
type readFloor struct {
	sig      *floorVerifier
	db       *sql.DB
	accounts []string // ids of the accounts read; each request picks one at random
}

// readFloorHandler answers every GET with a small JSON body holding the
// balance it read, after one verification and one SELECT of the balance of
// an account picked at random; 500 if the verification fails or the query
// does (an account that is not there included).
func readFloorHandler(f *readFloor) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !f.sig.verify() {
			return c.NoContent(http.StatusInternalServerError)
		}
		id := f.accounts[rand.IntN(len(f.accounts))]
		var balance int64
		err := f.db.QueryRowContext(c.Request().Context(), `SELECT balance FROM accounts WHERE id = $1`, id).Scan(&balance)
		if err != nil {
			return c.NoContent(http.StatusInternalServerError)
		}
		body := strconv.AppendInt([]byte(`{"Data":{"Verified":true,"Balance":`), balance, 10)
		return c.JSONBlob(http.StatusOK, append(body, "}}"...))
	}
}

// openReadFloorDB opens a pool on dsn configured as the service configures
// its own when PAYMENTS_DB_MAX_OPEN_CONNS and PAYMENTS_DB_MAX_IDLE_CONNS are
// both conns (and its lifetimes at their defaults, 30m and 5m), and checks
// that the database answers within 10 s.
func openReadFloorDB(ctx context.Context, dsn string, conns int) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("read floor: database: %w", err)
	}
	return db, nil
}

// customerAccounts returns the ids of every customer account in the
// database: in the service's scratch database, the accounts the fixture
// opened (the settlement account is left out). It fails when there is none.
func customerAccounts(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT id::text FROM accounts WHERE kind = 'customer' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read floor: list accounts: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read floor: list accounts: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read floor: list accounts: %w", err)
	}
	if len(ids) == 0 {
		return nil, errors.New("read floor: no customer account to read")
	}
	return ids, nil
}

// serveReadFloor runs the read-floor server on addr until SIGTERM or
// SIGINT: the signature floor's server, whose handler also reads one
// account's balance by primary key from the database at dsn (the service's
// own scratch database, after the fixture opened its accounts) through a
// pool of conns connections. The load tool starts it as a child process, as
// it does the signature floor.
func serveReadFloor(addr, dsn string, conns int) error {
	sig, err := newFloorVerifier()
	if err != nil {
		return err
	}
	db, err := openReadFloorDB(context.Background(), dsn, conns)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, err := customerAccounts(ctx, db)
	if err != nil {
		return err
	}
	return serveEcho(addr, readFloorHandler(&readFloor{sig: sig, db: db, accounts: ids}))
}
