// Package ledger is the domain of the bank's double-entry ledger: what a
// posting is and the invariants it must keep, the errors a ledger operation
// can end with, and the query and report types of its reads. It holds no
// database code: internal/postgres stores the ledger and implements every
// operation, and reports every failure as one of this package's sentinels.
//
// # Invariants
//
// Each one is checked here where it can be checked without the accounts
// (TransferParams.Validate, OpenAccountParams.Validate), and again by the
// store and the schema; each has a test.
//
//  1. Every transfer balances: one debit entry and one credit entry, for the
//     same positive amount, in one currency, on two different accounts of that
//     currency. A posting (models.Posting) moves one amount from one account
//     to another, so it balances by construction.
//  2. For every currency, the sum of all balances is zero (follows from 1:
//     money enters customer accounts only from the currency's settlement
//     account, which may go negative).
//  3. Each cached balance equals the sum of its account's entries, and each
//     entry's balance after is the account's balance right after it.
//  4. A customer balance is never below zero in any committed state
//     (ErrInsufficientFunds).
//  5. Transfers and entries are never updated or deleted (ErrImmutable);
//     corrections are new, reversing transfers.
//  6. An operation commits entirely or not at all.
//
// A Report (a reconciliation) recomputes every balance from the entries and
// states whether 2, 3 and 4 hold.
//
// # Errors
//
// Every ledger operation, whoever implements it, returns one of the sentinels
// in errors.go (possibly wrapped with context), a models parsing error, or a
// context error, so callers branch with errors.Is only. ErrTxConflict is a
// conflict that outlasted the store's retries and is never a funds problem;
// ErrUnavailable means the database cannot be reached (an outage, not a bug;
// never for a caller's cancelled context); ErrStorage is any other unexpected
// storage failure.
//
// # Threat model
//
// Inputs arrive from the HTTP edge and may be hostile: any amount, currency,
// account ID, reference or cursor. Invalid input yields a sentinel and writes
// nothing; a cursor is accepted only in the exact form this package produced
// (ParseCursor). Concurrent requests may race for the same money (double
// spend), and a process may die at any moment: the store serialises the first
// with row locks and commits nothing partial after the second.
package ledger
