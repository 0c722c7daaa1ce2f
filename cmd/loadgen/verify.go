package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/obpay/payments/client/obapi"
)

// paymentIDs reads the DomesticPaymentId of each 201 body.
func paymentIDs(bodies [][]byte) ([]string, error) {
	ids := make([]string, 0, len(bodies))
	for _, b := range bodies {
		var p struct {
			Data struct {
				DomesticPaymentID string `json:"DomesticPaymentId"`
				Status            string `json:"Status"`
			} `json:"Data"`
		}
		if err := json.Unmarshal(b, &p); err != nil || p.Data.DomesticPaymentID == "" {
			return nil, fmt.Errorf("a 201 answer without a payment id: %.200s", b)
		}
		ids = append(ids, p.Data.DomesticPaymentID)
	}
	return ids, nil
}

// checkReconcile asks the back office to recompute every balance from the
// entries; it fails unless the ledger is balanced with no drift.
func (f *fixture) checkReconcile(ctx context.Context) (obapi.ReconcileReport, error) {
	res, err := f.admin.ReconcileLedgerWithResponse(ctx, &obapi.ReconcileLedgerParams{})
	if err := expect("reconcile", err, res, http.StatusOK); err != nil {
		return obapi.ReconcileReport{}, err
	}
	r := *res.JSON200
	if !r.Balanced || len(r.Drift) != 0 {
		return r, fmt.Errorf("ledger does not reconcile: balanced=%v, %d accounts drift", r.Balanced, len(r.Drift))
	}
	return r, nil
}

// ledgerCheck is what checkLedger found.
type ledgerCheck struct {
	Payments  int // 201 answers checked
	Transfers int // transfers that are not opening balances
}

// checkLedger checks in the service's database that every payment answered
// 201 exists once, with exactly one transfer of two entries, and that the
// ledger holds no other payment transfer: the transfers that do not fund an
// opening balance are exactly the accepted payments' transfers.
func checkLedger(ctx context.Context, db *sql.DB, ids []string, openings int) (ledgerCheck, error) {
	var c ledgerCheck
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return c, fmt.Errorf("payment %s answered 201 twice", id)
		}
		seen[id] = true
	}
	rows, err := db.QueryContext(ctx, `
		SELECT p.id::text, p.status, p.transfer_id IS NOT NULL,
			(SELECT count(*) FROM transfers t WHERE t.id = p.transfer_id),
			(SELECT count(*) FROM entries e WHERE e.transfer_id = p.transfer_id)
		FROM payments p`)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	var withTransfer int
	found := 0
	for rows.Next() {
		var (
			id, status  string
			hasTransfer bool
			nTr, nEntr  int
		)
		if err := rows.Scan(&id, &status, &hasTransfer, &nTr, &nEntr); err != nil {
			return c, err
		}
		if !seen[id] {
			return c, fmt.Errorf("payment %s is in the ledger but was never answered 201", id)
		}
		found++
		if status == "Rejected" {
			if hasTransfer {
				return c, fmt.Errorf("rejected payment %s has a transfer", id)
			}
			continue
		}
		if !hasTransfer || nTr != 1 || nEntr != 2 {
			return c, fmt.Errorf("payment %s (%s): %d transfers, %d entries; want 1 and 2", id, status, nTr, nEntr)
		}
		withTransfer++
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	if found != len(ids) {
		return c, fmt.Errorf("%d payments answered 201 but %d are in the ledger", len(ids), found)
	}
	var transfers int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM transfers`).Scan(&transfers); err != nil {
		return c, err
	}
	if transfers-openings != withTransfer {
		return c, fmt.Errorf("ledger holds %d transfers besides %d opening balances, want %d (one per accepted payment)",
			transfers-openings, openings, withTransfer)
	}
	if found == 0 {
		return c, errors.New("no payment to check")
	}
	return ledgerCheck{Payments: found, Transfers: transfers - openings}, nil
}
