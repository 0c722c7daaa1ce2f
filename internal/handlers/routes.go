package handlers

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi"
	"github.com/obpay/payments/internal/obapi4"
	"github.com/obpay/payments/internal/security"
)

// RegisterRoutes declares every API route with its middleware: the whole
// authorization table of the service, on one server. dpop is the DPoP
// middleware (security.NewMiddleware); it runs first on every group, then the
// scope check, then per-route header checks, then the generated wrapper,
// which binds the parameters and calls h. It is RegisterAPIRoutes and
// RegisterBackOfficeRoutes on the same server with the same middleware.
func RegisterRoutes(e *echo.Echo, h *Handler, dpop echo.MiddlewareFunc) error {
	if err := RegisterAPIRoutes(e, h, dpop); err != nil {
		return err
	}
	return RegisterBackOfficeRoutes(e, h, dpop)
}

// RegisterAPIRoutes declares the Open Banking routes (PISP and AISP), the
// ones aggregators call.
func RegisterAPIRoutes(e *echo.Echo, h *Handler, dpop echo.MiddlewareFunc) error {
	if e == nil || h == nil || dpop == nil {
		return errors.New("handlers: RegisterAPIRoutes needs the server, the handler and the DPoP middleware")
	}
	registerOpenBanking(e, APIBase, &obapi.ServerInterfaceWrapper{Handler: h}, dpop)
	registerOpenBanking(e, PathV4, &obapi4.ServerInterfaceWrapper{Handler: v4Handler{h}}, dpop)
	return nil
}

// openBankingOperations are the Open Banking operations of a generated
// wrapper (obapi's for v3.1, obapi4's for v4.0): each binds the request's
// parameters and calls the version's handler.
type openBankingOperations interface {
	CreateDomesticPaymentConsents(echo.Context) error
	GetDomesticPaymentConsentsConsentId(echo.Context) error
	GetDomesticPaymentConsentsConsentIdFundsConfirmation(echo.Context) error
	CreateDomesticPayments(echo.Context) error
	GetDomesticPaymentsDomesticPaymentId(echo.Context) error
	GetDomesticPaymentsDomesticPaymentIdPaymentDetails(echo.Context) error
	CreateAccountAccessConsents(echo.Context) error
	GetAccountAccessConsentsConsentId(echo.Context) error
	DeleteAccountAccessConsentsConsentId(echo.Context) error
	GetAccounts(echo.Context) error
	GetAccountsAccountId(echo.Context) error
	GetAccountsAccountIdBalances(echo.Context) error
	GetAccountsAccountIdTransactions(echo.Context) error
}

// registerOpenBanking declares the Open Banking routes of one version under
// base: every version has the same paths, middleware and scopes.
func registerOpenBanking(e *echo.Echo, base string, w openBankingOperations, dpop echo.MiddlewareFunc) {
	key := requireIdempotencyKey()
	jsonOnly := acceptJSON()

	pisp := e.Group(base+"/pisp", jsonOnly, dpop, security.RequireScope("payments"))
	pisp.POST("/domestic-payment-consents", w.CreateDomesticPaymentConsents, key)
	pisp.GET("/domestic-payment-consents/:ConsentId", w.GetDomesticPaymentConsentsConsentId)
	pisp.GET("/domestic-payment-consents/:ConsentId/funds-confirmation", w.GetDomesticPaymentConsentsConsentIdFundsConfirmation)
	pisp.POST("/domestic-payments", w.CreateDomesticPayments, key)
	pisp.GET("/domestic-payments/:DomesticPaymentId", w.GetDomesticPaymentsDomesticPaymentId)
	pisp.GET("/domestic-payments/:DomesticPaymentId/payment-details", w.GetDomesticPaymentsDomesticPaymentIdPaymentDetails)

	aisp := e.Group(base+"/aisp", jsonOnly, dpop, security.RequireScope("accounts"))
	aisp.POST("/account-access-consents", w.CreateAccountAccessConsents)
	aisp.GET("/account-access-consents/:ConsentId", w.GetAccountAccessConsentsConsentId)
	aisp.DELETE("/account-access-consents/:ConsentId", w.DeleteAccountAccessConsentsConsentId)
	aisp.GET("/accounts", w.GetAccounts)
	aisp.GET("/accounts/:AccountId", w.GetAccountsAccountId)
	aisp.GET("/accounts/:AccountId/balances", w.GetAccountsAccountIdBalances)
	aisp.GET("/accounts/:AccountId/transactions", w.GetAccountsAccountIdTransactions, transactionsQuery())

	refuseOtherMethods(e, pisp, base+"/pisp")
	refuseOtherMethods(e, aisp, base+"/aisp")
}

// RegisterBackOfficeRoutes declares the back office (/internal/v1): the
// bank's own calls, scopes ledger:admin and consents:admin. With an admin
// listener it is registered there only, with a DPoP middleware that checks
// htu against the admin listener's URL.
func RegisterBackOfficeRoutes(e *echo.Echo, h *Handler, dpop echo.MiddlewareFunc) error {
	if e == nil || h == nil || dpop == nil {
		return errors.New("handlers: RegisterBackOfficeRoutes needs the server, the handler and the DPoP middleware")
	}
	w := &obapi.ServerInterfaceWrapper{Handler: h}
	office := e.Group("/internal/v1", acceptJSON(), dpop)
	ledgerAdmin, consentsAdmin := security.RequireScope("ledger:admin"), security.RequireScope("consents:admin")
	office.POST("/accounts", w.CreateLedgerAccount, ledgerAdmin)
	office.GET("/ledger/reconcile", w.ReconcileLedger, ledgerAdmin)
	office.POST("/consents/:ConsentId/authorise", w.AuthoriseConsent, consentsAdmin)
	office.POST("/consents/:ConsentId/reject", w.RejectConsent, consentsAdmin)

	refuseOtherMethods(e, office, "/internal/v1")
	return nil
}

// routedMethods are the methods a route of the API may be declared with.
var routedMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions,
}

// refuseOtherMethods answers 405 with an Allow header (RFC 9110 §15.5.6) for
// the methods a declared path of g does not serve. Without it echo answers
// 404: the catch-all route a group with middleware registers hides the path
// match from the router. The group's middleware still runs first, so an
// unauthenticated request learns nothing about the paths.
func refuseOtherMethods(e *echo.Echo, g *echo.Group, prefix string) {
	allowed := map[string][]string{}
	for _, r := range e.Routes() {
		if path, ok := strings.CutPrefix(r.Path, prefix); ok && path != "" && path != "/*" && slices.Contains(routedMethods, r.Method) {
			allowed[path] = append(allowed[path], r.Method)
		}
	}
	paths := make([]string, 0, len(allowed))
	for p := range allowed {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		methods := allowed[p]
		slices.Sort(methods)
		var others []string
		for _, m := range routedMethods {
			if !slices.Contains(methods, m) {
				others = append(others, m)
			}
		}
		g.Match(others, p, methodNotAllowed(strings.Join(methods, ", ")))
	}
}

func methodNotAllowed(allow string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderAllow, allow)
		return echo.NewHTTPError(http.StatusMethodNotAllowed)
	}
}
