package handlers

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi"
	"github.com/obpay/payments/internal/security"
)

// RegisterRoutes declares every API route with its middleware: the whole
// authorization table of the service. dpop is the DPoP middleware
// (security.NewMiddleware); it runs first on every group, then the scope
// check, then per-route header checks, then the generated wrapper, which
// binds the parameters and calls h.
func RegisterRoutes(e *echo.Echo, h *Handler, dpop echo.MiddlewareFunc) error {
	if e == nil || h == nil || dpop == nil {
		return errors.New("handlers: RegisterRoutes needs the server, the handler and the DPoP middleware")
	}
	w := &obapi.ServerInterfaceWrapper{Handler: h}
	key := requireIdempotencyKey()

	pisp := e.Group("/open-banking/v3.1/pisp", dpop, security.RequireScope("payments"))
	pisp.POST("/domestic-payment-consents", w.CreateDomesticPaymentConsents, key)
	pisp.GET("/domestic-payment-consents/:ConsentId", w.GetDomesticPaymentConsentsConsentId)
	pisp.GET("/domestic-payment-consents/:ConsentId/funds-confirmation", w.GetDomesticPaymentConsentsConsentIdFundsConfirmation)
	pisp.POST("/domestic-payments", w.CreateDomesticPayments, key)
	pisp.GET("/domestic-payments/:DomesticPaymentId", w.GetDomesticPaymentsDomesticPaymentId)

	aisp := e.Group("/open-banking/v3.1/aisp", dpop, security.RequireScope("accounts"))
	aisp.POST("/account-access-consents", w.CreateAccountAccessConsents)
	aisp.GET("/account-access-consents/:ConsentId", w.GetAccountAccessConsentsConsentId)
	aisp.DELETE("/account-access-consents/:ConsentId", w.DeleteAccountAccessConsentsConsentId)
	aisp.GET("/accounts", w.GetAccounts)
	aisp.GET("/accounts/:AccountId", w.GetAccountsAccountId)
	aisp.GET("/accounts/:AccountId/balances", w.GetAccountsAccountIdBalances)
	aisp.GET("/accounts/:AccountId/transactions", w.GetAccountsAccountIdTransactions, transactionsQuery())

	office := e.Group("/internal/v1", dpop)
	ledgerAdmin, consentsAdmin := security.RequireScope("ledger:admin"), security.RequireScope("consents:admin")
	office.POST("/accounts", w.CreateLedgerAccount, ledgerAdmin)
	office.GET("/ledger/reconcile", w.ReconcileLedger, ledgerAdmin)
	office.POST("/consents/:ConsentId/authorise", w.AuthoriseConsent, consentsAdmin)
	office.POST("/consents/:ConsentId/reject", w.RejectConsent, consentsAdmin)
	return nil
}
