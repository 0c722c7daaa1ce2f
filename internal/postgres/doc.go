// Package postgres is the service's only SQL: the double-entry ledger and the
// Open Banking resources on Postgres (through gorm and pgx), their
// transactions and retries, the embedded goose migrations
// (migrations/*.sql), and the one table that turns SQLSTATEs, constraint
// names and the database functions' outcomes into the domain's errors
// (errors.go). Nothing from gorm or pgx leaves this package: callers see
// models values and the sentinels of ledger and openbanking. The sandbox
// authorization server's statements (its tables come from migration 00007)
// are in the subpackage authstore, beside it because devauth's tests use
// this package.
//
// # Invariants
//
// Each ledger invariant (see package ledger) is enforced by this package and,
// where a database can, by the schema too (migrations/00001_ledger.sql); each
// has a test.
//
//  1. Every transfer balances: this package only ever writes transfers as one
//     debit and one credit entry of one amount; the schema checks amounts,
//     currencies (composite foreign keys) and, at commit, that each transfer
//     has exactly its two matching entries.
//  2. For every currency, the sum of all balances is zero.
//  3. Each cached balance equals the sum of its account's entries. Balances
//     change only through UPDATE accounts SET balance = balance ± amount, in
//     the same transaction as the entries, while the account row is locked.
//  4. A customer balance is never below zero in any committed state (checked
//     under the row lock, and by a CHECK constraint).
//  5. Transfers and entries are never updated or deleted (triggers raise).
//  6. An operation commits entirely or not at all: each use case is one
//     database transaction (or one statement). TransferTx is the API for a
//     caller that adds its own rows to a posting's transaction; the service
//     itself does not call it (a payment and its posting are one call of
//     ob_create_payment).
//
// # Concurrency
//
// Transactions run at READ COMMITTED. A transfer is one call of the database
// function ledger_post (migrations/00003_posting_functions.sql), one round
// trip: it locks both accounts with one SELECT ... ORDER BY id FOR UPDATE, so
// rows are always locked in id order and two transfers cannot deadlock each
// other; the funds check reads the balance from the locked row, so it always
// sees the latest committed value; then it moves the balances and writes the
// transfer and its entries. A payment is one call of ob_create_payment, which
// posts through the same ledger_post. The whole transaction is retried, with
// jittered exponential backoff and a bounded number of attempts, on
// serialization failures and deadlocks (SQLSTATE 40001, 40P01), which can
// also come from a caller's own statements around TransferTx. A conflict is never
// reported as insufficient funds: when retries run out the error is
// ledger.ErrTxConflict.
//
// # Errors
//
// Every error a Ledger or Store method returns is a sentinel of ledger or
// openbanking (possibly wrapped with context), a models parsing error, or a
// context error. (NewLedger, NewStore and the options return plain
// configuration errors; MigrateUp and ListMigrations return goose's errors
// with context.) Database constraint violations are mapped by constraint
// name, the database functions' refusals by SQLSTATE; no gorm or pgx error
// escapes, so callers branch with errors.Is only. Any call that reaches the
// database may return ledger.ErrUnavailable when it cannot be reached (the
// judgement of IsUnavailable: an outage, not a bug; never for a caller's
// cancelled context), and ledger.ErrStorage for any other unexpected
// database failure.
//
// # Threat model
//
// Concurrent requests may race for the same money (double spend): row locks
// serialise them. A process or connection may die at any moment: Postgres
// rolls back the open transaction, so nothing partial is committed. Someone
// with SQL access could still tamper with balances directly; Reconcile
// detects that as drift.
package postgres
