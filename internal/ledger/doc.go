// Package ledger is the bank's double-entry ledger on Postgres (through gorm):
// accounts, transfers and their entries, balances, and a reconciliation that
// proves the books still add up.
//
// # Invariants
//
// Each one is enforced by this package and, where a database can, by the
// schema too (migrations/00001_ledger.sql); each has a test.
//
//  1. Every transfer balances: one debit entry and one credit entry, for the
//     same positive amount, in one currency, on two different accounts of that
//     currency. The package only ever writes transfers this way; the schema
//     checks amounts, currencies (composite foreign keys) and, at commit, that
//     each transfer has exactly its two matching entries.
//  2. For every currency, the sum of all balances is zero (follows from 1:
//     money enters customer accounts only from the currency's settlement
//     account, which may go negative).
//  3. Each cached balance equals the sum of its account's entries, and each
//     entry's balance_after is the account's balance right after it. Balances
//     change only through UPDATE accounts SET balance = balance ± amount, in the
//     same transaction as the entries, while the account row is locked.
//  4. A customer balance is never below zero in any committed state (checked
//     under the row lock, and by a CHECK constraint).
//  5. Transfers and entries are never updated or deleted (triggers raise);
//     corrections are new, reversing transfers.
//  6. An operation commits entirely or not at all: each use case is one
//     database transaction, and TransferTx lets a caller add its own rows
//     (consent, payment, idempotency record) to the same transaction.
//
// # Concurrency
//
// Transactions run at READ COMMITTED. A transfer is one call of the database
// function ledger_post (migrations/00003_posting_functions.sql), one round
// trip: it locks both accounts with one SELECT ... ORDER BY id FOR UPDATE, so
// rows are always locked in id order and two transfers cannot deadlock each
// other; the funds check reads the balance from the locked row, so it always
// sees the latest committed value; then it moves the balances and writes the
// transfer and its entries. Database functions that post as part of a larger
// unit of work (a payment) call the same function. The whole
// transaction is retried, with jittered exponential backoff and a bounded number
// of attempts, on serialization failures and deadlocks (SQLSTATE 40001,
// 40P01), which can still come from a caller's own statements in TransferTx. A
// conflict is never reported as insufficient funds: when retries run out the
// error is ErrTxConflict.
//
// # Errors
//
// Every error returned by this package is one of its sentinels (possibly
// wrapped with context), a models parsing error, or a context error. Database
// constraint violations are mapped by constraint name; no gorm or pgx error
// escapes, so callers branch with errors.Is only. Any call that reaches the
// database may return ErrUnavailable when it cannot be reached (the judgement
// of IsUnavailable: an outage, not a bug; never for a caller's cancelled
// context), and ErrStorage for any other unexpected database failure.
//
// # Threat model
//
// Inputs arrive from the HTTP edge and may be hostile: any amount, currency,
// account ID, reference or cursor. Invalid input yields a sentinel and writes
// nothing. Concurrent requests may race for the same money (double spend):
// row locks serialise them. A process or connection may die at any moment:
// Postgres rolls back the open transaction, so nothing partial is committed.
// Someone with SQL access could still tamper with balances directly;
// Reconcile detects that as drift.
package ledger
