package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/testdb"
)

// readFloorDB returns a pool of 4 on a fresh, migrated database holding two
// customer accounts (balances 100 and 250) and a settlement account, and
// the customer accounts' ids by balance.
func readFloorDB(t *testing.T) (*readFloor, map[int64]string) {
	t.Helper()
	ctx := context.Background()
	db, err := openReadFloorDB(ctx, testdb.New(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ids := map[int64]string{}
	for i, bal := range []int64{100, 250} {
		var id string
		err := db.QueryRowContext(ctx, `INSERT INTO accounts (owner, currency, kind, scheme_name, identification, balance)
			VALUES ($1, 'GBP', 'customer', 'UK.OBIE.SortCodeAccountNumber', $2, $3) RETURNING id::text`,
			"psu-"+strconv.Itoa(i), fmt.Sprintf("%014d", 11111100000000+i), bal).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids[bal] = id
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (owner, currency, kind, scheme_name, identification, balance)
		VALUES ('bank', 'GBP', 'settlement', 'UK.OBIE.SortCodeAccountNumber', '99999900000000', -350)`); err != nil {
		t.Fatal(err)
	}
	sig, err := newFloorVerifier()
	if err != nil {
		t.Fatal(err)
	}
	return &readFloor{sig: sig, db: db}, ids
}

func TestReadFloorPoolIsTheServiceSize(t *testing.T) {
	db, err := openReadFloorDB(context.Background(), testdb.New(t), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Stats().MaxOpenConnections; got != 16 {
		t.Errorf("MaxOpenConnections = %d, want 16", got)
	}
}

func TestCustomerAccounts(t *testing.T) {
	f, ids := readFloorDB(t)
	got, err := customerAccounts(context.Background(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ids[100]: true, ids[250]: true}
	gotSet := map[string]bool{}
	for _, id := range got {
		gotSet[id] = true
	}
	if diff := cmp.Diff(want, gotSet); diff != "" || len(got) != 2 {
		t.Errorf("customerAccounts = %v, want the two customer accounts (-want +got):\n%s", got, diff)
	}

	empty, err := openReadFloorDB(context.Background(), testdb.New(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if ids, err := customerAccounts(context.Background(), empty); err == nil {
		t.Errorf("customerAccounts on a database without accounts = %v, nil; want an error", ids)
	}
}

// TestReadFloorHandler checks that each answer carries the balance of one
// of the accounts it may pick, read from the database after the
// verification, and that a failed verification or query answers 500.
func TestReadFloorHandler(t *testing.T) {
	f, ids := readFloorDB(t)
	f.accounts = []string{ids[100], ids[250]}
	e := echo.New()
	e.GET("/*", readFloorHandler(f))
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/open-banking/v3.1/aisp/accounts/x/balances", nil))
		return rec
	}
	seen := map[int64]int{}
	for i := 0; i < 40; i++ {
		rec := get()
		if rec.Code != http.StatusOK {
			t.Fatalf("read floor answered %d, want 200", rec.Code)
		}
		var body struct {
			Data struct {
				Verified bool
				Balance  int64
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("read floor body %q: %v", rec.Body, err)
		}
		if !body.Data.Verified || (body.Data.Balance != 100 && body.Data.Balance != 250) {
			t.Fatalf("read floor body %s, want a verified balance of 100 or 250", rec.Body)
		}
		seen[body.Data.Balance]++
	}
	if len(seen) != 2 {
		t.Errorf("40 reads saw balances %v, want both accounts read", seen)
	}

	t.Run("answers 500 for an account that is not there", func(t *testing.T) {
		f.accounts = []string{"00000000-0000-4000-8000-000000000000"}
		defer func() { f.accounts = []string{ids[100], ids[250]} }()
		if rec := get(); rec.Code != http.StatusInternalServerError {
			t.Errorf("read floor answered %d, want 500", rec.Code)
		}
	})
	t.Run("answers 500 for a bad signature", func(t *testing.T) {
		f.sig.s.Add(f.sig.s, f.sig.s) // tamper with the signature
		if rec := get(); rec.Code != http.StatusInternalServerError {
			t.Errorf("read floor answered %d, want 500", rec.Code)
		}
	})
}
