package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/obpay/payments/internal/handlers"
)

// httpListener is one of serve's HTTP listeners: the public one, and the
// admin one when PAYMENTS_ADMIN_ADDR is set. Both have the same timeouts,
// header limit, error log and shutdown.
type httpListener struct {
	name  string // "public" or "admin", in the log
	ln    net.Listener
	srv   *http.Server
	conns *connTracker
}

// listenHTTP binds addr (setting names the variable it came from, for the
// error) and prepares the server for h.
func listenHTTP(ctx context.Context, name, setting, addr string, h http.Handler, c config, log *slog.Logger) (*httpListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", setting, shownValue(addr), err)
	}
	srv := handlers.HTTPServer(addr, h, handlers.Timeouts{
		ReadHeader: c.ReadHeaderLimit, Read: c.ReadTimeout, Write: c.WriteTimeout, Idle: c.IdleTimeout,
	})
	// net/http's own complaints (TLS handshakes, bad requests it answers
	// itself, panics it recovers) go to the same JSON log.
	srv.ErrorLog = slog.NewLogLogger(log.With("listener", name).Handler(), slog.LevelWarn)
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	conns := newConnTracker()
	srv.ConnState = conns.track
	return &httpListener{name: name, ln: ln, srv: srv, conns: conns}, nil
}

// addr is the address actually bound (port 0 resolved).
func (l *httpListener) addr() string { return l.ln.Addr().String() }

// serveAll serves every listener, with TLS where its server has a
// TLSConfig; the channel receives one result per listener: nil after a
// shutdown, else the error that stopped it.
func serveAll(ls []*httpListener) <-chan error {
	served := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			var err error
			if l.srv.TLSConfig != nil {
				err = l.srv.ServeTLS(l.ln, "", "") // the certificate comes from TLSConfig
			} else {
				err = l.srv.Serve(l.ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("http server (%s): %w", l.name, err)
				return
			}
			served <- nil
		}()
	}
	return served
}

// shutdownAll stops every listener together within grace: each closes its
// listener and idle connections, then waits for its busy ones; connections
// that never sent a request are closed along the way (http.Server.Shutdown
// would wait for them). Past grace the remaining connections are closed and
// the error says so.
func shutdownAll(ls []*httpListener, grace time.Duration) error {
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopped := make(chan error, 1)
			go func() { stopped <- l.srv.Shutdown(sctx) }()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				l.conns.closeFresh()
				select {
				case err := <-stopped:
					if err != nil {
						_ = l.srv.Close()
					}
					errs[i] = err
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", grace, err)
		}
	}
	return nil
}

// closeAll closes every listener at once, for an exit on error.
func closeAll(ls []*httpListener) {
	for _, l := range ls {
		_ = l.srv.Close()
	}
}
