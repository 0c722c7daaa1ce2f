package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi4"
	"github.com/obpay/payments/internal/openbanking"
)

// PathV4 is the base path of the Open Banking v4.0 API.
const PathV4 = "/open-banking/v4.0"

const (
	pathV4PaymentConsents = PathV4 + "/pisp/domestic-payment-consents/"
	pathV4Payments        = PathV4 + "/pisp/domestic-payments/"
)

// v4Handler implements obapi4.ServerInterface: the v4.0 edge over the same
// services as Handler. It differs from v3.1 only in the mapping: the v4
// shapes and ISO codes on the way out, the v4 Initiation on the way in, and
// the version stamped on what it creates.
type v4Handler struct{ *Handler }

var _ obapi4.ServerInterface = v4Handler{}

// meta is the Meta member of every v4 answer: always present, here empty.
var meta = &obapi4.Meta{}

func (h v4Handler) links(path string) *obapi4.Links { return &obapi4.Links{Self: h.link(path)} }

// CreateDomesticPaymentConsents handles POST /pisp/domestic-payment-consents.
func (h v4Handler) CreateDomesticPaymentConsents(c echo.Context, params obapi4.CreateDomesticPaymentConsentsParams) error {
	cl, err := clientCaller(c)
	if err != nil {
		return err
	}
	var body obapi4.OBWriteDomesticConsent4
	raw, err := h.bodiesV4.decode(c, "CreateDomesticPaymentConsents", &body)
	if err != nil {
		return err
	}
	in := body.Data.Initiation
	if err := checkSchemesV4(in); err != nil {
		return err
	}
	initiation, risk, err := canonical(in, body.Risk)
	if err != nil {
		return err
	}
	req := openbanking.PaymentConsentRequest{
		Version: openbanking.V4_0,
		Initiation: openbanking.Initiation{
			Amount:   in.InstructedAmount.Amount,
			Currency: in.InstructedAmount.Currency,
			Creditor: openbanking.AccountRef{
				SchemeName: in.CreditorAccount.SchemeName, Identification: in.CreditorAccount.Identification,
				Name: in.CreditorAccount.Name,
			},
			Reference: referenceV4(in),
		},
		InitiationJSON: initiation,
		RiskJSON:       risk,
	}
	if body.Data.Authorisation != nil {
		if req.AuthorisationJSON, err = json.Marshal(body.Data.Authorisation); err != nil {
			return fmt.Errorf("encode authorisation: %w", err)
		}
	}
	pc, err := h.pay.CreatePaymentConsent(c.Request().Context(), cl, idempotency(params.XIdempotencyKey, raw), req)
	if err != nil {
		return obError(err)
	}
	return h.writeConsent(c, http.StatusCreated, pc)
}

// GetDomesticPaymentConsentsConsentId handles GET .../domestic-payment-consents/{ConsentId}.
func (h v4Handler) GetDomesticPaymentConsentsConsentId(c echo.Context, consentID obapi4.ConsentId, _ obapi4.GetDomesticPaymentConsentsConsentIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	pc, err := h.pay.PaymentConsent(c.Request().Context(), cl, consentID)
	if err != nil {
		return obError(err)
	}
	return h.writeConsent(c, http.StatusOK, pc)
}

// GetDomesticPaymentConsentsConsentIdFundsConfirmation handles GET
// .../domestic-payment-consents/{ConsentId}/funds-confirmation.
func (h v4Handler) GetDomesticPaymentConsentsConsentIdFundsConfirmation(c echo.Context, consentID obapi4.ConsentId, _ obapi4.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	fc, err := h.pay.FundsConfirmation(ctx, cl, consentID)
	if errors.Is(err, openbanking.ErrForbidden) && h.neverAuthorised(ctx, cl, consentID) {
		err = openbanking.ErrInvalidConsentStatus
	}
	if err != nil {
		return obError(err)
	}
	return c.JSON(http.StatusOK, obapi4.OBWriteFundsConfirmationResponse1{
		Data: obapi4.OBWriteFundsConfirmationResponse1Data{
			FundsAvailableResult: &obapi4.OBWriteFundsConfirmationResponse1DataFundsAvailableResult{
				FundsAvailable: fc.Available, FundsAvailableDateTime: fc.At,
			},
		},
		Links: h.links(pathV4PaymentConsents + url.PathEscape(consentID) + "/funds-confirmation"),
		Meta:  meta,
	})
}

// CreateDomesticPayments handles POST /pisp/domestic-payments. A new
// payment answers RCVD (or RJCT): v4 allows no other creation status; a
// replay of the same request answers the payment's current status.
func (h v4Handler) CreateDomesticPayments(c echo.Context, params obapi4.CreateDomesticPaymentsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	var body obapi4.OBWriteDomestic2
	raw, err := h.bodiesV4.decode(c, "CreateDomesticPayments", &body)
	if err != nil {
		return err
	}
	initiation, risk, err := canonical(body.Data.Initiation, body.Risk)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := h.pay.CreatePayment(ctx, cl, idempotency(params.XIdempotencyKey, raw),
		openbanking.PaymentRequest{Version: openbanking.V4_0, ConsentID: body.Data.ConsentId, InitiationJSON: initiation, RiskJSON: risk})
	if errors.Is(err, openbanking.ErrForbidden) && h.neverAuthorised(ctx, cl, body.Data.ConsentId) {
		err = openbanking.ErrInvalidConsentStatus
	}
	if err != nil {
		return obError(err)
	}
	return h.writePayment(c, http.StatusCreated, p, !p.Replayed)
}

// neverAuthorised reports whether consentID names a payment consent of cl's
// client, the one cl's token was issued for, that no PSU authorised (AWAU or
// RJCT). The service refuses a payment or a funds confirmation on it as
// forbidden, the token's PSU not being the consent's (it has none); v4.0
// answers U009, the consent not being AUTH. v3.1 keeps its 403.
func (h v4Handler) neverAuthorised(ctx context.Context, cl openbanking.Caller, consentID string) bool {
	pc, err := h.pay.PaymentConsent(ctx, cl, consentID)
	return err == nil && cl.PSU != "" &&
		(pc.Status == openbanking.StatusAwaitingAuthorisation || pc.Status == openbanking.StatusRejected)
}

// GetDomesticPaymentsDomesticPaymentId handles GET .../domestic-payments/{DomesticPaymentId}.
func (h v4Handler) GetDomesticPaymentsDomesticPaymentId(c echo.Context, paymentID obapi4.DomesticPaymentId, _ obapi4.GetDomesticPaymentsDomesticPaymentIdParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	p, err := h.pay.Payment(c.Request().Context(), cl, paymentID)
	if err != nil {
		return obError(err)
	}
	return h.writePayment(c, http.StatusOK, p, false)
}

// GetDomesticPaymentsDomesticPaymentIdPaymentDetails answers a payment's
// status history: one status, final when the payment was created, with the
// ledger transfer as its transaction (the payment itself when it was
// rejected and nothing was booked).
func (h v4Handler) GetDomesticPaymentsDomesticPaymentIdPaymentDetails(c echo.Context, paymentID obapi4.DomesticPaymentId, _ obapi4.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsParams) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	p, err := h.pay.Payment(c.Request().Context(), cl, paymentID)
	if err != nil {
		return obError(err)
	}
	code, err := paymentStatusV4(p.Status)
	if err != nil {
		return err
	}
	status := obapi4.OBWritePaymentDetails1Status(code)
	d := obapi4.OBWritePaymentDetails1{PaymentTransactionId: transactionID(p), Status: status, StatusUpdateDateTime: p.StatusUpdatedAt}
	if reason, _, ok := paymentStatusReasonV4(p.Status); ok {
		d.StatusDetail = &obapi4.OBWritePaymentDetails1StatusDetail{Status: status, StatusReason: &reason}
	}
	history := []obapi4.OBWritePaymentDetails1{d}
	return c.JSON(http.StatusOK, obapi4.OBWritePaymentDetailsResponse1{
		Data:  obapi4.OBWritePaymentDetailsResponse1Data{PaymentStatus: &history},
		Links: h.links(pathV4Payments + p.ID + "/payment-details"),
		Meta:  meta,
	})
}

func (h v4Handler) writeConsent(c echo.Context, status int, pc openbanking.PaymentConsent) error {
	code, err := paymentConsentStatusV4(pc.Status)
	if err != nil {
		return err
	}
	resp := obapi4.OBWriteDomesticConsentResponse5{
		Data: obapi4.OBWriteDomesticConsentResponse5Data{
			ConsentId:            pc.ID,
			CreationDateTime:     pc.CreatedAt,
			Status:               obapi4.OBWriteDomesticConsentResponse5DataStatus(code),
			StatusUpdateDateTime: pc.StatusUpdatedAt,
			Debtor:               debtorV4(pc.Debtor),
		},
		Links: h.links(pathV4PaymentConsents + pc.ID),
		Meta:  meta,
	}
	if err := storedInitiationV4(pc.Version, pc.InitiationJSON, &resp.Data.Initiation); err != nil {
		return err
	}
	if err := storedRiskV4(pc.Version, pc.RiskJSON, &resp.Risk); err != nil {
		return err
	}
	if pc.AuthorisationJSON != nil {
		resp.Data.Authorisation = &obapi4.OBWriteDomesticConsent4DataAuthorisation{}
		if err := json.Unmarshal(pc.AuthorisationJSON, resp.Data.Authorisation); err != nil {
			return fmt.Errorf("decode stored authorisation: %w", err)
		}
	}
	return c.JSON(status, resp)
}

// writePayment answers p; created says the request created it just now, so
// that its status is the v4 creation status.
func (h v4Handler) writePayment(c echo.Context, status int, p openbanking.Payment, created bool) error {
	current := paymentStatusV4
	if created {
		current = createdPaymentStatusV4
	}
	code, err := current(p.Status)
	if err != nil {
		return err
	}
	resp := obapi4.OBWriteDomesticResponse5{
		Data: obapi4.OBWriteDomesticResponse5Data{
			DomesticPaymentId:    p.ID,
			ConsentId:            p.ConsentID,
			CreationDateTime:     p.CreatedAt,
			Status:               obapi4.OBWriteDomesticResponse5DataStatus(code),
			StatusUpdateDateTime: p.StatusUpdatedAt,
			Debtor:               debtorV4(p.Debtor),
		},
		Links: h.links(pathV4Payments + p.ID),
		Meta:  meta,
	}
	if reason, description, ok := paymentStatusReasonV4(p.Status); ok {
		resp.Data.StatusReason = &[]obapi4.OBStatusReason{{StatusReasonCode: &reason, StatusReasonDescription: &description}}
	}
	if err := storedInitiationV4(p.Version, p.InitiationJSON, &resp.Data.Initiation); err != nil {
		return err
	}
	return c.JSON(status, resp)
}

// storedInitiationV4 decodes a stored Initiation into dst: as stored when
// the consent was created on v4.0, rewritten in the v4.0 shape when it was
// created on v3.1. A v3.1 Initiation v4.0 cannot show (no creditor Name,
// which v3.1 let out and v4.0 requires) answers NotFound on v4.0, as a
// v4.0 resource does on v3.1: read it on v3.1.
func storedInitiationV4(v openbanking.APIVersion, stored []byte, dst *obapi4.OBWriteDomestic2DataInitiation) error {
	raw, err := inV4Shape(v, stored, initiationToV4)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("decode stored initiation: %w", err)
	}
	return nil
}

// storedRiskV4 is storedInitiationV4 for Risk. A v3.1 PaymentPurposeCode
// (free text there) is kept when it is one of v4.0's ISO codes.
func storedRiskV4(v openbanking.APIVersion, stored []byte, dst *obapi4.OBRisk1) error {
	raw, err := inV4Shape(v, stored, func(b []byte) ([]byte, error) {
		return riskToV4(b, func(s string) bool { return obapi4.ExternalPurpose1Code(s).Valid() })
	})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("decode stored risk: %w", err)
	}
	return nil
}

func inV4Shape(v openbanking.APIVersion, stored []byte, fromV3 func([]byte) ([]byte, error)) ([]byte, error) {
	if v == openbanking.V4_0 {
		return stored, nil
	}
	raw, err := fromV3(stored)
	if errors.Is(err, errNoV4Shape) {
		return nil, NewAPIError(http.StatusBadRequest, CodeResourceNotFound,
			"The resource was created on v3.1 with members v4.0 cannot show (e.g. no CreditorAccount.Name): read it on v3.1", "")
	}
	return raw, err
}

func debtorV4(a *openbanking.AccountRef) *obapi4.OBCashAccountDebtor4 {
	if a == nil {
		return nil
	}
	return &obapi4.OBCashAccountDebtor4{SchemeName: optional(a.SchemeName), Identification: optional(a.Identification), Name: optional(a.Name)}
}

// referenceV4 is what the ledger books with the transfer of a v4 Initiation,
// as v3.1's Reference, else Unstructured, else EndToEndIdentification:
// Structured[0].CreditorReferenceInformation.Reference, else
// Unstructured[0], else EndToEndIdentification.
func referenceV4(in obapi4.OBWriteDomestic2DataInitiation) string {
	r := in.RemittanceInformation
	if r == nil {
		return in.EndToEndIdentification
	}
	if r.Structured != nil && len(*r.Structured) > 0 {
		if cri := (*r.Structured)[0].CreditorReferenceInformation; cri != nil && cri.Reference != nil && *cri.Reference != "" {
			return *cri.Reference
		}
	}
	if r.Unstructured != nil && len(*r.Unstructured) > 0 && (*r.Unstructured)[0] != "" {
		return (*r.Unstructured)[0]
	}
	return in.EndToEndIdentification
}
