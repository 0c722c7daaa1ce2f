package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
)

func TestReadyzReportsComponentsWithoutFailing(t *testing.T) {
	e := echo.New()
	h := readyz([]ReadyCheck{{Name: "Database", Ping: func(context.Context) error { return nil }}}, nil, func(context.Context) map[string]string {
		return map[string]string{"AuthorizationServer": "UNREACHABLE"}
	}, nil)
	rec := httptest.NewRecorder()
	if err := h(e.NewContext(httptest.NewRequest(http.MethodGet, "/readyz", nil), rec)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("readyz with the authorization server down = %d, want 200", rec.Code)
	}
	var got healthStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := healthStatus{Status: "READY", Components: map[string]string{"AuthorizationServer": "UNREACHABLE"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("readyz body (-want +got):\n%s", d)
	}
}
