package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// consentAccountSelect reads, for a batch of AISP reads, what each needs of
// its consent (the columns of an account access consent) and the account it asks for,
// in one statement. Parameters: two Postgres uuid[] literals of equal length,
// the account ids and the consent ids; read i is row ordinality i+1. A read
// whose consent does not exist has no row; the account columns are NULL when
// there is no such account. Each consent and account id is a primary key, so
// no read has more than one row.
const consentAccountSelect = `SELECT q.ord, c.id::text, c.kind, c.api_version, c.client_id, c.status, c.psu, c.created_at, c.status_updated_at,
	c.permissions, c.expires_at, c.transaction_from, c.transaction_to,
	b.id::text, b.owner, b.currency, b.kind, b.scheme_name, b.identification, b.name, b.balance, b.version, b.created_at
	FROM unnest(?::uuid[], ?::uuid[]) WITH ORDINALITY AS q(aid, cid, ord)
	JOIN consents c ON c.id = q.cid
	LEFT JOIN accounts b ON b.id = q.aid`

// accessKey is one AISP read's account and consent ids, both canonical UUIDs.
type accessKey struct {
	account, consent string
}

// accessRow is what consentAccountSelect read for one accessKey.
type accessRow struct {
	consent    openbanking.Consent
	hasConsent bool
	account    models.Account
	hasAccount bool
}

// accountReadBatch is the largest number of reads in one batch: at the
// concurrency a server sees it is rarely reached, and it bounds the size of
// one statement's arrays.
const accountReadBatch = 64

// fetchAccess runs consentAccountSelect for a batch of reads. The ids are
// canonical UUIDs (the caller checked them), so they can be joined into
// array literals as they are; gorm would expand a Go slice into a list of
// parameters instead. Rows are scanned by hand into the fields: this is the
// hot path of every AISP read, and reflection-based scanning cost more than
// the query. The scanned columns still map to the domain through
// consentRow.model and accountRow.model, the one mapping of each table.
func (s *Store) fetchAccess(ctx context.Context, keys []accessKey) ([]accessRow, error) {
	var aids, cids strings.Builder
	aids.Grow(len(keys)*37 + 2)
	cids.Grow(len(keys)*37 + 2)
	aids.WriteByte('{')
	cids.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			aids.WriteByte(',')
			cids.WriteByte(',')
		}
		aids.WriteString(k.account)
		cids.WriteString(k.consent)
	}
	aids.WriteByte('}')
	cids.WriteByte('}')

	rows, err := s.db.WithContext(ctx).Raw(consentAccountSelect, aids.String(), cids.String()).Rows()
	if err != nil {
		return nil, fmt.Errorf("read consents and accounts: %w", err)
	}
	defer rows.Close()
	out := make([]accessRow, len(keys))
	for rows.Next() {
		var (
			ord                                                        int64
			r                                                          consentRow
			accID, owner, currency, kind, scheme, identification, name *string
			balance, version                                           *int64
			created                                                    *time.Time
		)
		if err := rows.Scan(&ord, &r.ID, &r.Kind, &r.APIVersion, &r.ClientID, &r.Status, &r.PSU, &r.CreatedAt, &r.StatusUpdatedAt,
			&r.Permissions, &r.ExpiresAt, &r.TransactionFrom, &r.TransactionTo,
			&accID, &owner, &currency, &kind, &scheme, &identification, &name, &balance, &version, &created); err != nil {
			return nil, fmt.Errorf("read consents and accounts: %w", err)
		}
		if ord < 1 || ord > int64(len(out)) || out[ord-1].hasConsent {
			return nil, fmt.Errorf("read consents and accounts: unexpected row ordinality %d of %d", ord, len(out))
		}
		row := &out[ord-1]
		row.consent, row.hasConsent = r.model(), true
		if accID == nil {
			continue
		}
		row.hasAccount = true
		row.account = accountRow{
			ID: *accID, Owner: deref(owner), Currency: deref(currency), Kind: deref(kind),
			SchemeName: deref(scheme), Identification: deref(identification), Name: deref(name),
			Balance: deref(balance), Version: deref(version), CreatedAt: deref(created),
		}.model()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read consents and accounts: %w", err)
	}
	return out, nil
}

// ConsentAndAccount implements openbanking.ConsentStore. Concurrent reads
// go through s.accessReads, which answers all reads that arrived while
// earlier batches ran with one statement (see consentAccountSelect); a read
// is always answered by a statement that started after it arrived.
func (s *Store) ConsentAndAccount(ctx context.Context, consentID, accountID string) (openbanking.Consent, bool, models.Account, bool, error) {
	row, err := s.accessReads.Do(ctx, accessKey{account: accountID, consent: consentID})
	if err != nil {
		// A read whose own context ended gets the context's error, whatever
		// became of its batch.
		return openbanking.Consent{}, false, models.Account{}, false, dbError(ctx, err)
	}
	return row.consent, row.hasConsent, row.account, row.hasAccount, nil
}
