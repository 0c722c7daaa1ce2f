package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi"
	"github.com/obpay/payments/internal/openbanking"
)

const (
	pathPaymentConsents = "/open-banking/v3.1/pisp/domestic-payment-consents/"
	pathPayments        = "/open-banking/v3.1/pisp/domestic-payments/"
)

// CreateDomesticPaymentConsents handles POST /pisp/domestic-payment-consents.
func (h *Handler) CreateDomesticPaymentConsents(c echo.Context, params obapi.CreateDomesticPaymentConsentsParams) error {
	cl, err := clientCaller(c)
	if err != nil {
		return err
	}
	var body obapi.OBWriteDomesticConsent4
	raw, err := h.bodies.decode(c, "CreateDomesticPaymentConsents", &body)
	if err != nil {
		return err
	}
	req, err := consentRequest(body)
	if err != nil {
		return err
	}
	pc, err := h.pay.CreatePaymentConsent(c.Request().Context(), cl, idempotency(params.XIdempotencyKey, raw), req)
	if err != nil {
		return obError(err)
	}
	return h.writeConsent(c, http.StatusCreated, pc)
}

// GetDomesticPaymentConsentsConsentId handles GET .../domestic-payment-consents/{ConsentId}.
func (h *Handler) GetDomesticPaymentConsentsConsentId(c echo.Context, consentID obapi.ConsentId, _ obapi.GetDomesticPaymentConsentsConsentIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	pc, err := h.pay.PaymentConsent(c.Request().Context(), cl, consentID)
	if err != nil {
		return obError(err)
	}
	if pc.Version != openbanking.V3_1 {
		return notOnV3_1()
	}
	return h.writeConsent(c, http.StatusOK, pc)
}

// GetDomesticPaymentConsentsConsentIdFundsConfirmation handles GET
// .../domestic-payment-consents/{ConsentId}/funds-confirmation.
func (h *Handler) GetDomesticPaymentConsentsConsentIdFundsConfirmation(c echo.Context, consentID obapi.ConsentId, _ obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	fc, err := h.pay.FundsConfirmation(ctx, cl, consentID)
	if err != nil {
		// A v4.0 consent is unknown here, even where funds confirmation
		// refuses it for its status: the consent is read for its version
		// (only on this path, so a confirmation costs one read).
		pc, perr := h.pay.PaymentConsent(ctx, cl, consentID)
		switch {
		case perr != nil:
			return obError(perr)
		case pc.Version != openbanking.V3_1:
			return notOnV3_1()
		}
		return obError(err)
	}
	if fc.Version != openbanking.V3_1 {
		return notOnV3_1()
	}
	return c.JSON(http.StatusOK, obapi.OBWriteFundsConfirmationResponse1{
		Data: obapi.OBWriteFundsConfirmationResponse1Data{
			FundsAvailableResult: &obapi.OBWriteFundsConfirmationResponse1DataFundsAvailableResult{
				FundsAvailable: fc.Available, FundsAvailableDateTime: fc.At,
			},
		},
		Links: h.self(pathPaymentConsents + url.PathEscape(consentID) + "/funds-confirmation"),
	})
}

// CreateDomesticPayments handles POST /pisp/domestic-payments.
func (h *Handler) CreateDomesticPayments(c echo.Context, params obapi.CreateDomesticPaymentsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	var body obapi.OBWriteDomestic2
	raw, err := h.bodies.decode(c, "CreateDomesticPayments", &body)
	if err != nil {
		return err
	}
	initiation, risk, err := canonical(body.Data.Initiation, body.Risk)
	if err != nil {
		return err
	}
	p, err := h.pay.CreatePayment(c.Request().Context(), cl, idempotency(params.XIdempotencyKey, raw),
		openbanking.PaymentRequest{Version: openbanking.V3_1, ConsentID: body.Data.ConsentId, InitiationJSON: initiation, RiskJSON: risk})
	if err != nil {
		return obError(err)
	}
	return h.writePayment(c, http.StatusCreated, p)
}

// GetDomesticPaymentsDomesticPaymentId handles GET .../domestic-payments/{DomesticPaymentId}.
func (h *Handler) GetDomesticPaymentsDomesticPaymentId(c echo.Context, paymentID obapi.DomesticPaymentId, _ obapi.GetDomesticPaymentsDomesticPaymentIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	p, err := h.pay.Payment(c.Request().Context(), cl, paymentID)
	if err != nil {
		return obError(err)
	}
	if p.Version != openbanking.V3_1 {
		return notOnV3_1()
	}
	return h.writePayment(c, http.StatusOK, p)
}

// notOnV3_1 answers a v3.1 read of a payment consent or payment created on
// v4.0 (after the service's ownership checks): v4.0 members cannot be shown
// in v3.1 shapes, so on v3.1 the resource does not exist.
func notOnV3_1() error {
	return NewAPIError(http.StatusBadRequest, CodeResourceNotFound, "No such resource", "")
}

// canonical encodes Initiation and Risk (the generated structs of either
// version) the one way Go encodes them, so that a payment compares equal to
// its consent whatever the spacing and key order of either request.
func canonical(in, risk any) (initiation, riskJSON []byte, err error) {
	if initiation, err = json.Marshal(in); err != nil {
		return nil, nil, fmt.Errorf("encode initiation: %w", err)
	}
	if riskJSON, err = json.Marshal(risk); err != nil {
		return nil, nil, fmt.Errorf("encode risk: %w", err)
	}
	return initiation, riskJSON, nil
}

func consentRequest(body obapi.OBWriteDomesticConsent4) (openbanking.PaymentConsentRequest, error) {
	in := body.Data.Initiation
	initiation, risk, err := canonical(in, body.Risk)
	if err != nil {
		return openbanking.PaymentConsentRequest{}, err
	}
	req := openbanking.PaymentConsentRequest{
		Version: openbanking.V3_1,
		Initiation: openbanking.Initiation{
			Amount:   in.InstructedAmount.Amount,
			Currency: in.InstructedAmount.Currency,
			Creditor: openbanking.AccountRef{
				SchemeName: in.CreditorAccount.SchemeName, Identification: in.CreditorAccount.Identification,
				Name: deref(in.CreditorAccount.Name),
			},
			Reference: reference(in),
		},
		InitiationJSON: initiation,
		RiskJSON:       risk,
	}
	if body.Data.Authorisation != nil {
		if req.AuthorisationJSON, err = json.Marshal(body.Data.Authorisation); err != nil {
			return openbanking.PaymentConsentRequest{}, fmt.Errorf("encode authorisation: %w", err)
		}
	}
	return req, nil
}

// reference is what the ledger books with the transfer: the remittance
// reference, else its unstructured text, else the end-to-end id.
func reference(in obapi.OBWriteDomestic2DataInitiation) string {
	if r := in.RemittanceInformation; r != nil {
		if r.Reference != nil {
			return *r.Reference
		}
		if r.Unstructured != nil {
			return *r.Unstructured
		}
	}
	return in.EndToEndIdentification
}

func (h *Handler) writeConsent(c echo.Context, status int, pc openbanking.PaymentConsent) error {
	resp := obapi.OBWriteDomesticConsentResponse5{
		Data: obapi.OBWriteDomesticConsentResponse5Data{
			ConsentId:            pc.ID,
			CreationDateTime:     pc.CreatedAt,
			Status:               obapi.OBWriteDomesticConsentResponse5DataStatus(pc.Status),
			StatusUpdateDateTime: pc.StatusUpdatedAt,
			Debtor:               debtor(pc.Debtor),
		},
		Links: h.self(pathPaymentConsents + pc.ID),
	}
	if err := json.Unmarshal(pc.InitiationJSON, &resp.Data.Initiation); err != nil {
		return fmt.Errorf("decode stored initiation: %w", err)
	}
	if err := json.Unmarshal(pc.RiskJSON, &resp.Risk); err != nil {
		return fmt.Errorf("decode stored risk: %w", err)
	}
	if pc.AuthorisationJSON != nil {
		resp.Data.Authorisation = &obapi.OBWriteDomesticConsent4DataAuthorisation{}
		if err := json.Unmarshal(pc.AuthorisationJSON, resp.Data.Authorisation); err != nil {
			return fmt.Errorf("decode stored authorisation: %w", err)
		}
	}
	return c.JSON(status, resp)
}

func (h *Handler) writePayment(c echo.Context, status int, p openbanking.Payment) error {
	resp := obapi.OBWriteDomesticResponse5{
		Data: obapi.OBWriteDomesticResponse5Data{
			DomesticPaymentId:    p.ID,
			ConsentId:            p.ConsentID,
			CreationDateTime:     p.CreatedAt,
			Status:               obapi.OBWriteDomesticResponse5DataStatus(p.Status),
			StatusUpdateDateTime: p.StatusUpdatedAt,
			Debtor:               debtor(p.Debtor),
		},
		Links: h.self(pathPayments + p.ID),
	}
	if err := json.Unmarshal(p.InitiationJSON, &resp.Data.Initiation); err != nil {
		return fmt.Errorf("decode stored initiation: %w", err)
	}
	return c.JSON(status, resp)
}

// GetDomesticPaymentsDomesticPaymentIdPaymentDetails answers a payment's
// status history: here one status, final when the payment was created,
// with the ledger transfer as its transaction (the payment itself when it
// was rejected and nothing was booked).
func (h *Handler) GetDomesticPaymentsDomesticPaymentIdPaymentDetails(c echo.Context, paymentID obapi.DomesticPaymentId, _ obapi.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	p, err := h.pay.Payment(c.Request().Context(), cl, paymentID)
	if err != nil {
		return obError(err)
	}
	if p.Version != openbanking.V3_1 {
		return notOnV3_1()
	}
	history := []obapi.OBWritePaymentDetails1{{
		PaymentTransactionId: transactionID(p),
		Status:               obapi.OBWritePaymentDetails1Status(p.Status),
		StatusUpdateDateTime: p.StatusUpdatedAt,
	}}
	links := h.self(pathPayments + p.ID + "/payment-details")
	resp := obapi.OBWritePaymentDetailsResponse1{Links: &links}
	resp.Data.PaymentStatus = &history
	return c.JSON(http.StatusOK, resp)
}

// transactionID is a payment's PaymentTransactionId in payment-details: the
// ledger transfer that booked it, or the payment itself when it was rejected
// and nothing was booked.
func transactionID(p openbanking.Payment) string {
	if p.TransferID == "" {
		return p.ID
	}
	return p.TransferID
}

func debtor(a *openbanking.AccountRef) *obapi.OBCashAccountDebtor4 {
	if a == nil {
		return nil
	}
	return &obapi.OBCashAccountDebtor4{SchemeName: a.SchemeName, Identification: a.Identification, Name: optional(a.Name)}
}

// optional returns nil for "" so that optional fields are omitted, never
// sent empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
