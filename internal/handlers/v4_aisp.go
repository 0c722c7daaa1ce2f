package handlers

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/obapi4"
	"github.com/obpay/payments/internal/openbanking"
)

const (
	pathV4AccessConsents = PathV4 + "/aisp/account-access-consents/"
	pathV4Accounts       = PathV4 + "/aisp/accounts"
)

// CreateAccountAccessConsents handles POST /aisp/account-access-consents.
func (h v4Handler) CreateAccountAccessConsents(c echo.Context, _ obapi4.CreateAccountAccessConsentsParams) error {
	cl, err := clientCaller(c)
	if err != nil {
		return err
	}
	var body obapi4.OBReadConsent1
	if _, err := h.bodiesV4.decode(c, "CreateAccountAccessConsents", &body); err != nil {
		return err
	}
	req := openbanking.AccountAccessRequest{
		Version:         openbanking.V4_0,
		ExpiresAt:       body.Data.ExpirationDateTime,
		TransactionFrom: body.Data.TransactionFromDateTime,
		TransactionTo:   body.Data.TransactionToDateTime,
	}
	for _, p := range body.Data.Permissions {
		req.Permissions = append(req.Permissions, openbanking.Permission(p))
	}
	ac, err := h.acc.CreateAccountAccessConsent(c.Request().Context(), cl, req)
	if err != nil {
		return obError(err)
	}
	return h.writeAccessConsent(c, http.StatusCreated, ac)
}

// GetAccountAccessConsentsConsentId handles GET .../account-access-consents/{ConsentId}.
func (h v4Handler) GetAccountAccessConsentsConsentId(c echo.Context, consentID obapi4.ConsentId, _ obapi4.GetAccountAccessConsentsConsentIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	ac, err := h.acc.AccountAccessConsent(c.Request().Context(), cl, consentID)
	if err != nil {
		return obError(err)
	}
	return h.writeAccessConsent(c, http.StatusOK, ac)
}

// DeleteAccountAccessConsentsConsentId handles DELETE .../account-access-consents/{ConsentId}.
func (h v4Handler) DeleteAccountAccessConsentsConsentId(c echo.Context, consentID obapi4.ConsentId, _ obapi4.DeleteAccountAccessConsentsConsentIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	if err := h.acc.RevokeAccountAccessConsent(c.Request().Context(), cl, consentID); err != nil {
		return obError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// GetAccounts handles GET /aisp/accounts.
func (h v4Handler) GetAccounts(c echo.Context, _ obapi4.GetAccountsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	accts, g, err := h.acc.Accounts(c.Request().Context(), cl)
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, h.accounts(pathV4Accounts, accts, g))
}

// GetAccountsAccountId handles GET /aisp/accounts/{AccountId}.
func (h v4Handler) GetAccountsAccountId(c echo.Context, accountID obapi4.AccountId, _ obapi4.GetAccountsAccountIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	a, g, err := h.acc.Account(c.Request().Context(), cl, accountID)
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, h.accounts(pathV4Accounts+"/"+string(a.ID), []models.Account{a}, g))
}

// GetAccountsAccountIdBalances handles GET /aisp/accounts/{AccountId}/balances.
func (h v4Handler) GetAccountsAccountIdBalances(c echo.Context, accountID obapi4.AccountId, _ obapi4.GetAccountsAccountIdBalancesParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	a, at, err := h.acc.Balance(c.Request().Context(), cl, accountID)
	if err != nil {
		return obError(err)
	}
	amount := obapi4.OBReadBalance1DataBalanceAmount{Amount: a.Balance.Format(), Currency: a.Currency}
	balance := func(t obapi4.OBBalanceType1Code) obapi4.OBReadBalance1DataBalance {
		return obapi4.OBReadBalance1DataBalance{AccountId: string(a.ID), Amount: amount, CreditDebitIndicator: obapi4.OBCreditDebitCodeCredit, DateTime: at, Type: t}
	}
	return c.JSON(http.StatusOK, obapi4.OBReadBalance1{
		Data:  obapi4.OBReadBalance1Data{Balance: []obapi4.OBReadBalance1DataBalance{balance(obapi4.OBBalanceType1CodeITAV), balance(obapi4.OBBalanceType1CodeITBD)}},
		Links: h.links(pathV4Accounts + "/" + string(a.ID) + "/balances"),
		Meta:  meta,
	})
}

// GetAccountsAccountIdTransactions handles GET /aisp/accounts/{AccountId}/transactions.
func (h v4Handler) GetAccountsAccountIdTransactions(c echo.Context, accountID obapi4.AccountId, params obapi4.GetAccountsAccountIdTransactionsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	page, q, err := h.transactions(c, cl, accountID, params.FromBookingDateTime, params.ToBookingDateTime, params.Cursor)
	if err != nil {
		return obError(err)
	}
	detail := page.Grant.Has(openbanking.ReadTransactionsDetail)
	txs := make([]obapi4.OBTransaction6, 0, len(page.Entries))
	for _, e := range page.Entries {
		txs = append(txs, transactionV4(e, detail))
	}
	links := h.transactionLinks(pathV4Accounts+"/"+url.PathEscape(accountID)+"/transactions", params.FromBookingDateTime, params.ToBookingDateTime, q.Cursor, page.Next)
	return c.JSON(http.StatusOK, obapi4.OBReadTransaction6{
		Data:  obapi4.OBReadTransaction6Data{Transaction: &txs},
		Links: &obapi4.Links{Self: links.Self, Next: links.Next},
		Meta:  meta,
	})
}

func transactionV4(e models.Entry, detail bool) obapi4.OBTransaction6 {
	t := obapi4.OBTransaction6{
		AccountId:            string(e.AccountID),
		TransactionId:        optional(string(e.ID)),
		CreditDebitIndicator: obapi4.OBCreditDebitCode(e.Direction),
		Status:               obapi4.ExternalEntryStatus1CodeBOOK,
		BookingDateTime:      e.BookedAt,
		ValueDateTime:        &e.BookedAt,
		Amount:               obapi4.OBActiveOrHistoricCurrencyAndAmount{Amount: e.Amount.Format(), Currency: e.Amount.Currency},
	}
	if detail {
		t.TransactionInformation = optional(e.Reference)
		t.Balance = &obapi4.OBTransactionCashBalance{
			Amount:               obapi4.OBActiveOrHistoricCurrencyAndAmount{Amount: e.BalanceAfter.Format(), Currency: e.BalanceAfter.Currency},
			CreditDebitIndicator: obapi4.OBCreditDebitCodeCredit,
			Type:                 obapi4.OBBalanceType1CodeITBD,
		}
	}
	return t
}

func (h v4Handler) accounts(path string, accts []models.Account, g openbanking.Grant) obapi4.OBReadAccount6 {
	out := make([]obapi4.OBAccount6, 0, len(accts))
	detail := g.Has(openbanking.ReadAccountsDetail)
	personal, current := obapi4.OBInternalAccountType1CodePersonal, obapi4.OBExternalAccountSubType1CodeCACC
	for _, a := range accts {
		created, currency := a.CreatedAt, a.Currency
		v := obapi4.OBAccount6{
			AccountId: string(a.ID), Currency: &currency, AccountCategory: &personal, AccountTypeCode: &current,
			Nickname: optional(a.Name), OpeningDate: &created,
		}
		if detail {
			v.Account = &[]obapi4.OBAccount6Account{{SchemeName: a.SchemeName, Identification: a.Identification, Name: optional(a.Name)}}
		}
		out = append(out, v)
	}
	return obapi4.OBReadAccount6{Data: obapi4.OBReadAccount6Data{Account: &out}, Links: h.links(path), Meta: meta}
}

func (h v4Handler) writeAccessConsent(c echo.Context, status int, ac openbanking.AccountAccessConsent) error {
	resp, err := h.accessConsent(ac)
	if err != nil {
		return err
	}
	return c.JSON(status, resp)
}

func (h v4Handler) accessConsent(ac openbanking.AccountAccessConsent) (obapi4.OBReadConsentResponse1, error) {
	code, err := accessConsentStatusV4(ac, h.now())
	if err != nil {
		return obapi4.OBReadConsentResponse1{}, err
	}
	perms := make([]obapi4.OBInternalPermissions1Code, len(ac.Permissions))
	for i, p := range ac.Permissions {
		perms[i] = obapi4.OBInternalPermissions1Code(p)
	}
	return obapi4.OBReadConsentResponse1{
		Data: obapi4.OBReadConsentResponse1Data{
			ConsentId: ac.ID, CreationDateTime: ac.CreatedAt,
			Status:               obapi4.OBReadConsentResponse1DataStatus(code),
			StatusUpdateDateTime: ac.StatusUpdatedAt, Permissions: perms, ExpirationDateTime: ac.ExpiresAt,
			TransactionFromDateTime: ac.TransactionFrom, TransactionToDateTime: ac.TransactionTo,
		},
		Links: h.links(pathV4AccessConsents + ac.ID),
		Meta:  meta,
	}, nil
}
