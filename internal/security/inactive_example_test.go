package security_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/obpay/payments/internal/security"
)

// ExampleHTTPIntrospector_IntrospectKey shows the per-key bound on calls that
// come back inactive: past InactivePerKey, that key's uncached tokens get
// ErrIntrospectionThrottled without a call, while another key is still asked.
func ExampleHTTPIntrospector_IntrospectKey() {
	var calls atomic.Int64
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"active":false}`) // every token is unknown
	}))
	defer as.Close()
	in, err := security.NewHTTPIntrospector(security.IntrospectionConfig{
		URL: as.URL, ClientID: "payments-rs", ClientSecret: "secret", InactivePerKey: 2,
	})
	if err != nil {
		panic(err)
	}
	defer in.Close()

	ctx := context.Background()
	for i := range 4 {
		_, err := in.IntrospectKey(ctx, fmt.Sprintf("junk-%d", i), "jkt-of-key-A")
		fmt.Println(errors.Is(err, security.ErrIntrospectionThrottled))
	}
	res, err := in.IntrospectKey(ctx, "junk-b", "jkt-of-key-B")
	fmt.Println(res.Active, err, calls.Load())
	// Output:
	// false
	// false
	// true
	// true
	// false <nil> 3
}
