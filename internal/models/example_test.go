package models_test

import (
	"fmt"

	"github.com/obpay/payments/internal/models"
)

func ExampleParseAmount() {
	a, err := models.ParseAmount("100.5", "GBP")
	fmt.Println(a.Minor, a.Currency, a, err)
	_, err = models.ParseAmount("1.001", "GBP")
	fmt.Println(err)
	// Output:
	// 10050 GBP 100.50 <nil>
	// amount: more decimals than the currency allows
}
