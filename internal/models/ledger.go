package models

import (
	"errors"
	"time"
)

// AccountID identifies a ledger account: a lower-case UUID string.
type AccountID string

// TransferID identifies a transfer: a lower-case UUID string.
type TransferID string

// EntryID identifies one entry (one leg of a transfer): the decimal string of
// a database sequence value. For any one account, entry IDs increase in
// booking order.
type EntryID string

// AccountKind says whose money an account holds.
type AccountKind string

const (
	// KindCustomer is a customer's (PSU's) account. Its balance never goes
	// below zero: there is no overdraft in v1.
	KindCustomer AccountKind = "customer"
	// KindSettlement is the bank's settlement account for one currency. It
	// funds opening balances and external flows, and may go negative.
	KindSettlement AccountKind = "settlement"
)

// SchemeSortCodeAccountNumber is the Open Banking identification scheme of UK
// accounts: a 6-digit sort code followed by an 8-digit account number.
const SchemeSortCodeAccountNumber = "UK.OBIE.SortCodeAccountNumber"

// Direction is the side of an entry, named as Open Banking's
// CreditDebitIndicator.
type Direction string

const (
	// Credit adds money to an account.
	Credit Direction = "Credit"
	// Debit takes money out of an account.
	Debit Direction = "Debit"
)

// Account is a ledger account as the ledger reports it.
type Account struct {
	ID             AccountID
	Owner          string // the PSU subject; "bank" for settlement accounts
	Currency       string // ISO 4217
	Kind           AccountKind
	SchemeName     string // SchemeSortCodeAccountNumber
	Identification string // 14 digits: sort code then account number
	Name           string // the nickname given at opening, may be empty
	Balance        Amount // booked balance, in Currency
	Version        int64  // incremented by every posting to the account
	CreatedAt      time.Time
}

// Transfer is one balanced movement of money: From is debited and To is
// credited with the same positive Amount, at BookedAt.
type Transfer struct {
	ID        TransferID
	From      AccountID
	To        AccountID
	Amount    Amount
	Reference string
	BookedAt  time.Time
}

// Entry is one leg of a transfer seen from one account.
type Entry struct {
	ID           EntryID
	TransferID   TransferID
	AccountID    AccountID
	Direction    Direction
	Amount       Amount // always positive; Direction gives the sign
	BalanceAfter Amount // the account's balance right after this entry
	BookedAt     time.Time
	Counterparty AccountID // the other account of the transfer
	Reference    string    // the transfer's reference
}

// Errors returned by Posting.Validate.
var (
	ErrPostingNotPositive = errors.New("posting: amount must be positive")
	ErrPostingSameAccount = errors.New("posting: debit and credit account are the same")
)

// Posting is a request to move a positive Amount from one account to another.
// Because one amount is debited and credited, a posting balances by
// construction.
type Posting struct {
	From   AccountID
	To     AccountID
	Amount Amount
}

// Validate checks what can be checked without the accounts: a known currency
// (ErrUnknownCurrency), a positive amount (ErrPostingNotPositive) and two
// different accounts (ErrPostingSameAccount).
func (p Posting) Validate() error {
	if _, ok := CurrencyExponent(p.Amount.Currency); !ok {
		return ErrUnknownCurrency
	}
	if !p.Amount.IsPositive() {
		return ErrPostingNotPositive
	}
	if p.From == p.To {
		return ErrPostingSameAccount
	}
	return nil
}
