package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// Sandbox identities of the payments service (README, "The sandbox authorization server").
const (
	adminClientID     = "sandbox-admin"
	adminClientSecret = "admin-secret"
	tppClientID       = "sandbox-tpp"
	tppClientSecret   = "sandbox-secret"
	redirectURI       = "http://127.0.0.1/callback"
)

// account is a funded customer account opened for the run.
type account struct {
	ID     string
	Owner  string
	Scheme string
	Number string
}

// fixture is everything the run prepared on the payments service through the
// SDK: one DPoP key, the back-office client, the aggregator's clients.
type fixture struct {
	base     string
	key      *client.Key
	admin    *client.Client      // sandbox-admin: back office
	tpp      *client.TokenClient // sandbox-tpp: tokens
	payments *client.Client      // sandbox-tpp, client credentials, scope payments
	accounts []account
	progress io.Writer // progress messages
	// serverPID is the payments process, whose CPU a window of payments is
	// charged to.
	serverPID int
}

func newFixture(base string) (*fixture, error) {
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		return nil, err
	}
	adminTokens, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: adminClientID, ClientSecret: adminClientSecret, Key: key})
	if err != nil {
		return nil, err
	}
	admin, err := client.New(base, key, adminTokens.ClientCredentialsSource("ledger:admin", "consents:admin"))
	if err != nil {
		return nil, err
	}
	tpp, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: tppClientID, ClientSecret: tppClientSecret, Key: key})
	if err != nil {
		return nil, err
	}
	pay, err := client.New(base, key, tpp.ClientCredentialsSource("payments"))
	if err != nil {
		return nil, err
	}
	return &fixture{base: base, key: key, admin: admin, tpp: tpp, payments: pay, progress: io.Discard}, nil
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		first = ctx.Err()
	}
	return first
}

// openAccounts opens n customer accounts, owned by psu-0 ... psu-(n-1), each
// funded with opening GBP, through the back-office API.
func (f *fixture) openAccounts(ctx context.Context, n int, opening string) error {
	f.accounts = make([]account, n)
	return parallel(ctx, n, 4, func(ctx context.Context, i int) error {
		owner := fmt.Sprintf("psu-%d", i)
		res, err := f.admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
			obapi.CreateLedgerAccountRequest{Owner: owner, Currency: "GBP", Nickname: owner + " current", OpeningBalance: &opening})
		if err := expect("open account for "+owner, err, res, http.StatusCreated); err != nil {
			return err
		}
		if len(res.JSON201.Account) == 0 {
			return fmt.Errorf("open account for %s: no identification", owner)
		}
		f.accounts[i] = account{ID: res.JSON201.AccountId, Owner: owner,
			Scheme: res.JSON201.Account[0].SchemeName, Number: res.JSON201.Account[0].Identification}
		return nil
	})
}

// approve has the sandbox authorization server approve consentID for psu
// and exchanges the code (PKCE) for a PSU token bound to the fixture's key.
func (f *fixture) approve(ctx context.Context, scope, consentID, psu, debtor string) (*client.Token, error) {
	pkce, err := client.NewPKCE()
	if err != nil {
		return nil, err
	}
	auth := client.AuthorizeRequest{RedirectURI: redirectURI, Scope: scope, PKCE: pkce, ConsentID: consentID, PSU: psu, DebtorAccount: debtor}
	code, err := f.tpp.SandboxAuthorize(ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("authorize consent %s: %w", consentID, err)
	}
	tok, err := f.tpp.Exchange(ctx, code, redirectURI, pkce)
	if err != nil {
		return nil, fmt.Errorf("exchange code of consent %s: %w", consentID, err)
	}
	return tok, nil
}

// readTokens returns, for each of the first n accounts, a PSU token of its
// owner under an authorised account-access consent that allows balances.
func (f *fixture) readTokens(ctx context.Context, n int) ([]string, error) {
	api, err := client.New(f.base, f.key, f.tpp.ClientCredentialsSource("accounts"))
	if err != nil {
		return nil, err
	}
	tokens := make([]string, n)
	err = parallel(ctx, n, 4, func(ctx context.Context, i int) error {
		consent, err := api.CreateAccountAccessConsentsWithResponse(ctx, &obapi.CreateAccountAccessConsentsParams{},
			obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: []obapi.OBExternalPermissions1Code{
				obapi.OBExternalPermissions1CodeReadAccountsBasic, obapi.OBExternalPermissions1CodeReadBalances,
			}}})
		if err := expect("create account access consent", err, consent, http.StatusCreated); err != nil {
			return err
		}
		tok, err := f.approve(ctx, "accounts", consent.JSON201.Data.ConsentId, f.accounts[i].Owner, "")
		if err != nil {
			return err
		}
		tokens[i] = tok.AccessToken
		return nil
	})
	return tokens, err
}

// ticket is one payment ready to submit: an authorised consent, the PSU
// token issued for it, the payment body and its idempotency key.
type ticket struct {
	consentID string
	token     string
	body      []byte
	key       string
}

// paymentTickets prepares n payments of 0.01 GBP, numbered from first: the
// debtor of payment i is account i mod N and the creditor the next account,
// so payments spread over every account and credit internally.
func (f *fixture) paymentTickets(ctx context.Context, first, n, workers int) ([]ticket, error) {
	out := make([]ticket, n)
	err := parallel(ctx, n, workers, func(ctx context.Context, j int) error {
		i := first + j
		debtor := f.accounts[i%len(f.accounts)]
		creditor := f.accounts[(i+1)%len(f.accounts)]
		name := creditor.Owner
		ref := fmt.Sprintf("lg-%d", i)
		initiation := obapi.OBWriteDomestic2DataInitiation{
			InstructionIdentification: ref,
			EndToEndIdentification:    ref,
			InstructedAmount:          obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: "0.01", Currency: "GBP"},
			CreditorAccount:           obapi.OBCashAccountCreditor3{SchemeName: creditor.Scheme, Identification: creditor.Number, Name: &name},
		}
		consent, err := f.payments.CreateDomesticPaymentConsentsWithResponse(ctx,
			&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
			obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation}})
		if err := expect("create payment consent", err, consent, http.StatusCreated); err != nil {
			return err
		}
		consentID := consent.JSON201.Data.ConsentId
		tok, err := f.approve(ctx, "payments", consentID, debtor.Owner, debtor.ID)
		if err != nil {
			return err
		}
		body, err := json.Marshal(obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: initiation}})
		if err != nil {
			return err
		}
		out[j] = ticket{consentID: consentID, token: tok.AccessToken, body: body, key: client.NewIdempotencyKey()}
		return nil
	})
	return out, err
}

// currentNonce asks the service for a fresh DPoP nonce: a request whose
// proof carries none is answered 401 use_dpop_nonce with the current one
// (the proof is checked before the token, so no introspection happens).
func (f *fixture) currentNonce(ctx context.Context, token string) (string, error) {
	u := f.base + "/open-banking/v3.1/aisp/accounts"
	proof, err := f.key.Proof(client.ProofRequest{Method: http.MethodGet, URL: u, AccessToken: token})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	nonce := res.Header.Get("DPoP-Nonce")
	if nonce == "" {
		return "", fmt.Errorf("no DPoP-Nonce in the answer (HTTP %d); is PAYMENTS_DPOP_NONCE=required?", res.StatusCode)
	}
	return nonce, nil
}

// signAll builds n requests with build and signs each one's DPoP proof with
// the nonce and the current time, on every core; called just before a
// window, so the proofs are well inside the service's 60 s iat window.
func (f *fixture) signAll(n int, nonce string, build func(i int) (request, string)) ([]request, error) {
	reqs := make([]request, n)
	now := time.Now()
	err := parallel(context.Background(), n, runtime.GOMAXPROCS(0), func(_ context.Context, i int) error {
		r, token := build(i)
		proof, err := f.key.Proof(client.ProofRequest{Method: r.method, URL: r.url, AccessToken: token, Nonce: nonce, IssuedAt: now})
		if err != nil {
			return err
		}
		r.header.Set("Authorization", "DPoP "+token)
		r.header.Set("DPoP", proof)
		reqs[i] = r
		return nil
	})
	return reqs, err
}

// balanceReads prepares n balance reads spread over the first
// len(tokens) accounts, each with its owner's token.
func (f *fixture) balanceReads(n int, tokens []string, nonce string) ([]request, error) {
	return f.signAll(n, nonce, func(i int) (request, string) {
		k := i % len(tokens)
		h := http.Header{}
		h.Set("Accept", "application/json")
		return request{method: http.MethodGet, url: f.base + "/open-banking/v3.1/aisp/accounts/" + f.accounts[k].ID + "/balances", header: h}, tokens[k]
	})
}

// paymentRequests prepares the submission of each ticket.
func (f *fixture) paymentRequests(ts []ticket, nonce string) ([]request, error) {
	return f.signAll(len(ts), nonce, func(i int) (request, string) {
		h := http.Header{}
		h.Set("Accept", "application/json")
		h.Set("Content-Type", "application/json")
		h.Set("x-idempotency-key", ts[i].key)
		return request{method: http.MethodPost, url: f.base + "/open-banking/v3.1/pisp/domestic-payments", body: ts[i].body, header: h}, ts[i].token
	})
}

// expect turns a call's outcome into an error naming what failed, with the
// service's answer.
func expect(what string, err error, res interface {
	StatusCode() int
	GetBody() []byte
}, want int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if got := res.StatusCode(); got != want {
		body := res.GetBody()
		if len(body) > 600 {
			body = body[:600]
		}
		return fmt.Errorf("%s: HTTP %d, want %d: %s", what, got, want, body)
	}
	return nil
}
