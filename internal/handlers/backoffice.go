package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi"
	"github.com/obpay/payments/internal/openbanking"
)

// CreateLedgerAccount handles POST /internal/v1/accounts.
func (h *Handler) CreateLedgerAccount(c echo.Context, _ obapi.CreateLedgerAccountParams) error {
	var body obapi.CreateLedgerAccountRequest
	if _, err := h.bodies.decode(c, "CreateLedgerAccount", &body); err != nil {
		return err
	}
	a, err := h.office.OpenAccount(c.Request().Context(), openbanking.OpenAccountRequest{
		Owner: body.Owner, Currency: body.Currency, Nickname: body.Nickname, OpeningBalance: deref(body.OpeningBalance),
	})
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusCreated, obapi.LedgerAccount{
		AccountId: string(a.ID), Owner: a.Owner, Currency: a.Currency, Nickname: a.Name, Balance: a.Balance.Format(),
		Account: []obapi.LedgerAccountIdentification{{SchemeName: a.SchemeName, Identification: a.Identification, Name: a.Name}},
	})
}

// ReconcileLedger handles GET /internal/v1/ledger/reconcile.
func (h *Handler) ReconcileLedger(c echo.Context, _ obapi.ReconcileLedgerParams) error {
	rep, err := h.office.Reconcile(c.Request().Context())
	if err != nil {
		return obError(err)
	}
	out := obapi.ReconcileReport{
		Balanced: rep.Balanced, AccountsChecked: int64(rep.AccountsChecked),
		Drift: make([]obapi.LedgerDrift, 0, len(rep.Drift)), Totals: make([]obapi.LedgerCurrencyTotal, 0, len(rep.Totals)),
	}
	for _, d := range rep.Drift {
		out.Drift = append(out.Drift, obapi.LedgerDrift{AccountId: string(d.AccountID), Expected: d.Expected.Format(), Actual: d.Actual.Format()})
	}
	for _, t := range rep.Totals {
		out.Totals = append(out.Totals, obapi.LedgerCurrencyTotal{Currency: t.Currency, Net: t.Net.Format()})
	}
	return c.JSON(http.StatusOK, out)
}

// AuthoriseConsent handles POST /internal/v1/consents/{ConsentId}/authorise.
func (h *Handler) AuthoriseConsent(c echo.Context, consentID obapi.ConsentId, _ obapi.AuthoriseConsentParams) error {
	var body obapi.AuthoriseConsentRequest
	if _, err := h.bodies.decode(c, "AuthoriseConsent", &body); err != nil {
		return err
	}
	d, err := h.office.Authorise(c.Request().Context(), consentID, body.Psu, deref(body.DebtorAccount))
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, decision(d))
}

// RejectConsent handles POST /internal/v1/consents/{ConsentId}/reject.
func (h *Handler) RejectConsent(c echo.Context, consentID obapi.ConsentId, _ obapi.RejectConsentParams) error {
	d, err := h.office.Reject(c.Request().Context(), consentID)
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, decision(d))
}

func decision(d openbanking.Decision) obapi.ConsentDecision {
	return obapi.ConsentDecision{ConsentId: d.ConsentID, Status: obapi.ConsentDecisionStatus(d.Status), StatusUpdateDateTime: d.StatusUpdatedAt}
}
