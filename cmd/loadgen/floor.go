package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/handlers"
)

// floorInput stands in for a proof's signing input: a header and claims of
// the size a real ES256 proof has.
const floorInput = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoiLi4uIiwieSI6Ii4uLiJ9fQ." +
	"eyJqdGkiOiIuLi4iLCJodG0iOiJHRVQiLCJodHUiOiJodHRwOi8vMTI3LjAuMC4xL29wZW4tYmFua2luZy92My4xL2Fpc3AvYWNjb3VudHMvLi4uL2JhbGFuY2VzIiwiaWF0IjoxfQ"

// floorVerifier is one ES256 signature over floorInput and its public key:
// the work of the signature floor, one raw standard-library verification per
// request.
type floorVerifier struct {
	pub  *ecdsa.PublicKey
	r, s *big.Int
}

func newFloorVerifier() (*floorVerifier, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(floorInput))
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		return nil, err
	}
	return &floorVerifier{pub: &priv.PublicKey, r: r, s: s}, nil
}

// verify hashes the input and checks the signature, as a proof check must.
func (f *floorVerifier) verify() bool {
	digest := sha256.Sum256([]byte(floorInput))
	return ecdsa.Verify(f.pub, digest[:], f.r, f.s)
}

// floorHandler answers every GET with a small JSON body after one
// verification; 500 if the verification ever fails.
func floorHandler(f *floorVerifier) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !f.verify() {
			return c.NoContent(http.StatusInternalServerError)
		}
		return c.JSONBlob(http.StatusOK, []byte(`{"Data":{"Verified":true}}`))
	}
}

// serveFloor runs the signature-floor server on addr until SIGTERM or
// SIGINT: an echo server with no middleware, behind the service's own
// http.Server settings, whose only work per request is one ES256
// verification. The load tool starts it as a child process so that the
// server and the load generator are separate processes, as with payments.
func serveFloor(addr string) error {
	f, err := newFloorVerifier()
	if err != nil {
		return err
	}
	return serveEcho(addr, floorHandler(f))
}

// serveEcho serves h for every GET on addr until SIGTERM or SIGINT: an echo
// server with no middleware behind the service's http.Server settings (the
// shape both floors share).
func serveEcho(addr string, h echo.HandlerFunc) error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/*", h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("floor: listen %s: %w", addr, err)
	}
	srv := handlers.HTTPServer(addr, e, handlers.Timeouts{
		ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second,
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
