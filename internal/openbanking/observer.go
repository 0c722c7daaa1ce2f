package openbanking

// Observer learns what the service did, for counting (metrics). Its methods
// are called after the change is stored, never with customer data, and must
// not block.
type Observer interface {
	// ConsentChanged reports that a consent of kind was created,
	// authorised, rejected, consumed (a payment used it) or revoked.
	ConsentChanged(kind ConsentKind, event ConsentEvent)
	// PaymentBooked reports a new payment and its status: Rejected when
	// the debtor could not fund it, else one of the accepted statuses.
	PaymentBooked(status PaymentStatus)
	// IdempotentReplay reports a request answered with the resource its
	// idempotency key first created ("payment", "payment-consent").
	IdempotentReplay(resource string)
}

// ConsentEvent is a step of a consent's life, as Observer counts it.
type ConsentEvent string

// The steps Observer hears of.
const (
	ConsentCreated    ConsentEvent = "created"
	ConsentAuthorised ConsentEvent = "authorised"
	ConsentRejected   ConsentEvent = "rejected"
	ConsentConsumed   ConsentEvent = "consumed"
	ConsentRevoked    ConsentEvent = "revoked"
)

// nopObserver is the Observer of a Service configured without one.
type nopObserver struct{}

func (nopObserver) ConsentChanged(ConsentKind, ConsentEvent) {}
func (nopObserver) PaymentBooked(PaymentStatus)              {}
func (nopObserver) IdempotentReplay(string)                  {}
