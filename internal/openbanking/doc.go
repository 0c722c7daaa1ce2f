// Package openbanking implements the Open Banking resources of the service on
// top of the ledger: domestic payment consents and their authorisation,
// domestic payments, account access consents and the account, balance and
// transaction views an aggregator reads, with the Open Banking idempotency
// rules. It speaks in domain terms (callers, consents, payments); the HTTP
// edge in internal/handlers maps them to the OB wire types and error codes.
//
// # Invariants
//
// Each is decided here and enforced through the Store this package declares
// (store.go), which internal/postgres implements and its schema checks again.
// The package imports no database code, and runs on an in-memory Store in its
// unit tests. A payment is one call of Store.CreatePayment, which checks the
// consent with CheckPayment under its lock and posts through the ledger: in
// Postgres one statement and so one transaction and one round trip.
//
//  1. A consent moves only AwaitingAuthorisation -> Authorised -> Consumed
//     (payment) or Revoked (account access), or AwaitingAuthorisation ->
//     Rejected; nothing leaves a final state (a trigger refuses it).
//  2. A payment, its consent becoming Consumed, its idempotency record, its
//     ledger transfer and entries commit together in one transaction or not
//     at all. A payment the debtor cannot fund is committed as Rejected with
//     no postings, and its consent is Consumed all the same.
//  3. At most one payment per consent (UNIQUE(consent_id)); the consent row is
//     locked (SELECT ... FOR UPDATE) before its status is checked, so two
//     payments on one consent cannot both pass the check.
//  4. An idempotency key is scoped to (client, operation) for the configured
//     lifetime (24 hours by default). The same key and the same request body
//     return the resource the first request created, in its current state,
//     with no new effect; the same key with another body is
//     ErrIdempotencyConflict and writes nothing. A concurrent duplicate waits
//     for the first request's transaction (the key's unique index) and then
//     gets its resource. Requests that fail before anything is created leave
//     no record, because the record is written in the same transaction as
//     the resource.
//  5. Every resource belongs to the client that created it: another client
//     gets ErrForbidden. Calls that act for a PSU need a PSU token issued for
//     the consent in question.
//
// # Errors
//
// Methods return the sentinels below (possibly wrapped), *FieldError for a
// request field the service refuses, ledger sentinels that callers may map
// (ledger.ErrTxConflict above all), or context errors. The Store returns no
// driver error: a database that cannot be reached matches ErrUnavailable (the
// same value as ledger.ErrUnavailable), and any other unexpected database
// failure matches ErrStorage. Every method
// that reads or writes may return ErrUnavailable, even where its own list of
// errors does not name it.
package openbanking
