package openbanking

import (
	"errors"
	"fmt"
)

// APIVersion is the Open Banking Read/Write API version a resource was
// created on: the major.minor of its path (/open-banking/v3.1, /open-banking/v4.0).
// A consent keeps the version it was created on, and a payment has its
// consent's.
type APIVersion string

// The API versions this service serves.
const (
	V3_1 APIVersion = "3.1"
	V4_0 APIVersion = "4.0"
)

// ErrUnsupportedVersion: a create request names no API version this service
// serves. The HTTP edge sets the version of every request it passes on, so
// this is a bug of the caller, never a client's mistake.
var ErrUnsupportedVersion = errors.New("openbanking: request names no supported API version")

// checkVersion refuses a version other than V3_1 and V4_0, the empty one
// included: nothing defaults to a version, so an edge that forgot to set it
// fails at once instead of creating a resource on the wrong one.
func checkVersion(v APIVersion) error {
	switch v {
	case V3_1, V4_0:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnsupportedVersion, string(v))
}

// ErrOtherVersion is the ErrInvalidConsentStatus of a payment on a consent
// created on another API version: OB does not let a consent created on one
// version be executed on another. errors.Is(err, ErrInvalidConsentStatus)
// holds for it.
var ErrOtherVersion = fmt.Errorf("%w: the consent was created on another API version", ErrInvalidConsentStatus)
