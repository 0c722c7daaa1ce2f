package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/obapi"
	"github.com/obpay/payments/internal/openbanking"
)

const (
	pathAccessConsents = "/open-banking/v3.1/aisp/account-access-consents/"
	pathAccounts       = "/open-banking/v3.1/aisp/accounts"
)

// CreateAccountAccessConsents handles POST /aisp/account-access-consents.
func (h *Handler) CreateAccountAccessConsents(c echo.Context, _ obapi.CreateAccountAccessConsentsParams) error {
	cl, err := clientCaller(c)
	if err != nil {
		return err
	}
	var body obapi.OBReadConsent1
	if _, err := h.bodies.decode(c, "CreateAccountAccessConsents", &body); err != nil {
		return err
	}
	req := openbanking.AccountAccessRequest{
		Version:         openbanking.V3_1,
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
	return c.JSON(http.StatusCreated, h.accessConsent(ac))
}

// GetAccountAccessConsentsConsentId handles GET .../account-access-consents/{ConsentId}.
func (h *Handler) GetAccountAccessConsentsConsentId(c echo.Context, consentID obapi.ConsentId, _ obapi.GetAccountAccessConsentsConsentIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	ac, err := h.acc.AccountAccessConsent(c.Request().Context(), cl, consentID)
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, h.accessConsent(ac))
}

// DeleteAccountAccessConsentsConsentId handles DELETE .../account-access-consents/{ConsentId}.
func (h *Handler) DeleteAccountAccessConsentsConsentId(c echo.Context, consentID obapi.ConsentId, _ obapi.DeleteAccountAccessConsentsConsentIdParams) error {
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
func (h *Handler) GetAccounts(c echo.Context, _ obapi.GetAccountsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	accts, g, err := h.acc.Accounts(c.Request().Context(), cl)
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, h.accounts(pathAccounts, accts, g))
}

// GetAccountsAccountId handles GET /aisp/accounts/{AccountId}.
func (h *Handler) GetAccountsAccountId(c echo.Context, accountID obapi.AccountId, _ obapi.GetAccountsAccountIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	a, g, err := h.acc.Account(c.Request().Context(), cl, accountID)
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, h.accounts(pathAccounts+"/"+string(a.ID), []models.Account{a}, g))
}

// GetAccountsAccountIdBalances handles GET /aisp/accounts/{AccountId}/balances.
func (h *Handler) GetAccountsAccountIdBalances(c echo.Context, accountID obapi.AccountId, _ obapi.GetAccountsAccountIdBalancesParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	a, at, err := h.acc.Balance(c.Request().Context(), cl, accountID)
	if err != nil {
		return obError(err)
	}
	amount := obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: a.Balance.Format(), Currency: a.Currency}
	balance := func(t obapi.OBBalanceType1Code) obapi.OBReadBalance1DataBalance {
		return obapi.OBReadBalance1DataBalance{AccountId: string(a.ID), Amount: amount, CreditDebitIndicator: "Credit", DateTime: at, Type: t}
	}
	return c.JSON(http.StatusOK, obapi.OBReadBalance1{
		Data:  obapi.OBReadBalance1Data{Balance: []obapi.OBReadBalance1DataBalance{balance("InterimAvailable"), balance("InterimBooked")}},
		Links: h.self(pathAccounts + "/" + string(a.ID) + "/balances"),
	})
}

// GetAccountsAccountIdTransactions handles GET /aisp/accounts/{AccountId}/transactions.
func (h *Handler) GetAccountsAccountIdTransactions(c echo.Context, accountID obapi.AccountId, params obapi.GetAccountsAccountIdTransactionsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	page, q, err := h.transactions(c, cl, accountID, params.FromBookingDateTime, params.ToBookingDateTime, params.Cursor)
	if err != nil {
		return obError(err)
	}
	detail := page.Grant.Has(openbanking.ReadTransactionsDetail)
	txs := make([]obapi.OBTransaction6, 0, len(page.Entries))
	for _, e := range page.Entries {
		txs = append(txs, transaction(e, detail))
	}
	links := h.transactionLinks(pathAccounts+"/"+url.PathEscape(accountID)+"/transactions",
		params.FromBookingDateTime, params.ToBookingDateTime, q.Cursor, page.Next)
	return c.JSON(http.StatusOK, obapi.OBReadTransaction6{Data: obapi.OBReadTransaction6Data{Transaction: txs}, Links: links})
}

// transactions reads one page of an account's transactions for the query
// parameters of either version, the dates read in the bank's timezone.
func (h *Handler) transactions(c echo.Context, cl openbanking.Caller, accountID string, from, to, cursor *string) (openbanking.TransactionsPage, openbanking.TransactionsQuery, error) {
	fromT, err := bookingDateTime("fromBookingDateTime", from, h.loc)
	if err != nil {
		return openbanking.TransactionsPage{}, openbanking.TransactionsQuery{}, err
	}
	toT, err := bookingDateTime("toBookingDateTime", to, h.loc)
	if err != nil {
		return openbanking.TransactionsPage{}, openbanking.TransactionsQuery{}, err
	}
	q := openbanking.TransactionsQuery{From: fromT, To: toT, Cursor: deref(cursor)}
	page, err := h.acc.Transactions(c.Request().Context(), cl, accountID, q)
	return page, q, err
}

// transactionLinks are the Links of a transactions page at path. They repeat
// the filters as the client sent them, so that following Next asks for the
// same window.
func (h *Handler) transactionLinks(path string, from, to *string, cursor, next string) obapi.Links {
	fromRaw, toRaw := deref(from), deref(to)
	links := obapi.Links{Self: h.link(path + queryString(fromRaw, toRaw, cursor))}
	if next != "" {
		n := h.link(path + queryString(fromRaw, toRaw, next))
		links.Next = &n
	}
	return links
}

// queryString carries the filters, as sent, and the cursor into a link.
func queryString(from, to, cursor string) string {
	v := url.Values{}
	if from != "" {
		v.Set("fromBookingDateTime", from)
	}
	if to != "" {
		v.Set("toBookingDateTime", to)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// bookingDateRE is the syntax of fromBookingDateTime and toBookingDateTime,
// the pattern api/openapi.yaml declares: an ISO 8601 extended date-time with
// optional fractional seconds and an optional offset.
var bookingDateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$`)

// parseBookingDateTime parses a fromBookingDateTime or toBookingDateTime
// value. OB Read/Write Data API Specification, Date Formats: dates in the
// query string are not timezone aware, so a value without an offset is read
// in loc, the bank's timezone; a local time that a daylight-saving change
// skips or repeats resolves as time.Date does. A value with Z or an offset
// (RFC 3339 §5.6) is that instant.
func parseBookingDateTime(s string, loc *time.Location) (time.Time, error) {
	m := bookingDateRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, errors.New("not an ISO 8601 date-time")
	}
	if m[2] != "" {
		return time.Parse(time.RFC3339Nano, s)
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", s, loc)
}

// bookingDateTime returns the value of the query parameter name read in loc,
// nil when it is absent, or a 400 UK.OBIE.Field.Invalid naming it.
func bookingDateTime(name string, v *string, loc *time.Location) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := parseBookingDateTime(*v, loc)
	if err != nil {
		return nil, NewAPIError(http.StatusBadRequest, CodeFieldInvalid, "Not an ISO 8601 date-time such as 2026-01-31T00:00:00", name)
	}
	return &t, nil
}

func transaction(e models.Entry, detail bool) obapi.OBTransaction6 {
	t := obapi.OBTransaction6{
		AccountId:            string(e.AccountID),
		TransactionId:        string(e.ID),
		CreditDebitIndicator: obapi.OBCreditDebitCode(e.Direction),
		Status:               "Booked",
		BookingDateTime:      e.BookedAt,
		ValueDateTime:        &e.BookedAt,
		Amount:               obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: e.Amount.Format(), Currency: e.Amount.Currency},
	}
	if detail {
		t.TransactionInformation = optional(e.Reference)
		t.Balance = &obapi.OBTransactionCashBalance{
			Amount:               obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: e.BalanceAfter.Format(), Currency: e.BalanceAfter.Currency},
			CreditDebitIndicator: "Credit",
			Type:                 "InterimBooked",
		}
	}
	return t
}

func (h *Handler) accounts(path string, accts []models.Account, g openbanking.Grant) obapi.OBReadAccount6 {
	out := make([]obapi.OBAccount6, 0, len(accts))
	detail := g.Has(openbanking.ReadAccountsDetail)
	for _, a := range accts {
		created := a.CreatedAt
		v := obapi.OBAccount6{
			AccountId: string(a.ID), Currency: a.Currency, AccountType: "Personal", AccountSubType: "CurrentAccount",
			Nickname: optional(a.Name), OpeningDate: &created,
		}
		if detail {
			v.Account = &[]obapi.OBAccount6Account{{SchemeName: a.SchemeName, Identification: a.Identification, Name: optional(a.Name)}}
		}
		out = append(out, v)
	}
	return obapi.OBReadAccount6{Data: obapi.OBReadAccount6Data{Account: out}, Links: h.self(path)}
}

func (h *Handler) accessConsent(ac openbanking.AccountAccessConsent) obapi.OBReadConsentResponse1 {
	perms := make([]obapi.OBExternalPermissions1Code, len(ac.Permissions))
	for i, p := range ac.Permissions {
		perms[i] = obapi.OBExternalPermissions1Code(p)
	}
	return obapi.OBReadConsentResponse1{
		Data: obapi.OBReadConsentResponse1Data{
			ConsentId: ac.ID, CreationDateTime: ac.CreatedAt, Status: obapi.OBReadConsentResponse1DataStatus(ac.Status),
			StatusUpdateDateTime: ac.StatusUpdatedAt, Permissions: perms, ExpirationDateTime: ac.ExpiresAt,
			TransactionFromDateTime: ac.TransactionFrom, TransactionToDateTime: ac.TransactionTo,
		},
		Links: h.self(pathAccessConsents + ac.ID),
	}
}

// transactionsQuery checks the query of GET .../transactions before the
// generated wrapper binds it, so a bad value gets UK.OBIE.Field.Invalid with
// its Path (the wrapper's would be a bare InvalidFormat).
func transactionsQuery() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			q := c.QueryParams()
			for _, name := range []string{"fromBookingDateTime", "toBookingDateTime"} {
				vs, ok := q[name]
				if !ok {
					continue
				}
				if len(vs) != 1 {
					return NewAPIError(http.StatusBadRequest, CodeFieldInvalid, "Parameter must be sent once", name)
				}
				// The syntax does not depend on the timezone; the handler
				// reads the value in the bank's.
				if _, err := bookingDateTime(name, &vs[0], time.UTC); err != nil {
					return err
				}
			}
			if vs, ok := q["cursor"]; ok && (len(vs) != 1 || vs[0] == "" || len(vs[0]) > 512) {
				return NewAPIError(http.StatusBadRequest, CodeFieldInvalid, "Not a cursor this server issued", "cursor")
			}
			return next(c)
		}
	}
}
