package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/labstack/echo/v4"
)

// startDebugPprof serves Go's runtime profiles (CPU, heap, allocations,
// goroutines, ...) under /debug/pprof/ on addr, a loopback address checked by
// loadConfig, until ctx ends. It is off unless PAYMENTS_DEBUG_PPROF_ADDR is
// set, and it uses its own mux and listener so that nothing of it is reachable
// through the API's address. The returned function stops it.
func startDebugPprof(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("PAYMENTS_DEBUG_PPROF_ADDR=%q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile or trace may run for as long as the caller asks, so no
	// write timeout; headers must still arrive promptly.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WarnContext(ctx, "debug pprof server stopped", "err", err.Error())
		}
	}()
	log.InfoContext(ctx, "debug pprof serving", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// registerPprof serves the same profiles under /debug/pprof/ on the admin
// listener. They share its write timeout, so a CPU profile or trace there is
// limited to PAYMENTS_WRITE_TIMEOUT; PAYMENTS_DEBUG_PPROF_ADDR has no limit.
func registerPprof(e *echo.Echo) {
	e.GET("/debug/pprof/*", echo.WrapHandler(http.HandlerFunc(pprof.Index)))
	e.GET("/debug/pprof/cmdline", echo.WrapHandler(http.HandlerFunc(pprof.Cmdline)))
	e.GET("/debug/pprof/profile", echo.WrapHandler(http.HandlerFunc(pprof.Profile)))
	e.Match([]string{http.MethodGet, http.MethodPost}, "/debug/pprof/symbol", echo.WrapHandler(http.HandlerFunc(pprof.Symbol)))
	e.GET("/debug/pprof/trace", echo.WrapHandler(http.HandlerFunc(pprof.Trace)))
}
