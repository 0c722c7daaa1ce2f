package openbanking

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/obpay/payments/internal/models"
)

// ConsentDetails is what a customer is shown before deciding on a consent:
// who asks, and for what. Payment consents fill Amount, Creditor and
// Reference; account access consents Permissions and ExpiresAt (nil when
// open-ended).
type ConsentDetails struct {
	ID          string
	ClientID    string
	Kind        ConsentKind
	Status      ConsentStatus
	Amount      models.Amount
	Creditor    AccountRef
	Reference   string
	Permissions []Permission
	ExpiresAt   *time.Time
}

// ConsentDetails returns the consent as the bank's consent page shows it to
// the customer. The caller (the sandbox authorization server) has already
// checked that the consent belongs to the client asking.
//
// Errors: ErrNotFound, ErrStorage, or a context error.
func (s *Service) ConsentDetails(ctx context.Context, consentID string) (ConsentDetails, error) {
	r, err := s.store.Consent(ctx, consentID)
	if err != nil {
		return ConsentDetails{}, err
	}
	d := ConsentDetails{ID: r.ID, ClientID: r.ClientID, Kind: r.Kind, Status: r.Status}
	switch r.Kind {
	case KindPayment:
		var init struct {
			CreditorAccount struct {
				SchemeName     string
				Identification string
				Name           string
			}
		}
		if err := json.Unmarshal(r.InitiationJSON, &init); err != nil {
			return ConsentDetails{}, fmt.Errorf("%w: consent %s: stored initiation unreadable", ErrStorage, r.ID)
		}
		d.Amount, d.Reference = r.Amount, r.Reference
		d.Creditor = AccountRef{SchemeName: init.CreditorAccount.SchemeName,
			Identification: init.CreditorAccount.Identification, Name: init.CreditorAccount.Name}
	case KindAccountAccess:
		d.Permissions, d.ExpiresAt = r.Permissions, r.ExpiresAt
	}
	return d, nil
}

// CustomerAccounts returns the customer accounts psu owns, oldest first
// (none for an unknown customer).
//
// Errors: ErrUnavailable, ErrStorage, or a context error.
func (s *Service) CustomerAccounts(ctx context.Context, psu string) ([]models.Account, error) {
	return s.store.AccountsByOwner(ctx, psu)
}
