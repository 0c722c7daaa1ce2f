package security_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/obpay/payments/internal/security"
)

// ExampleClientAssertionAlg shows which JWS algorithm the private_key_jwt
// assertions of the introspection client use for a key, and that a key off
// the FAPI 2.0 set is refused before any call.
func ExampleClientAssertionAlg() {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	alg, err := security.ClientAssertionAlg(p256)
	fmt.Println(alg, err)

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, err = security.ClientAssertionAlg(p384)
	fmt.Println(err != nil)
	// Output:
	// ES256 <nil>
	// true
}
