package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/obpay/payments/internal/handlers"
	"github.com/obpay/payments/internal/postgres"
)

// serveHooks lets tests add routes and learn the bound address. Nil in
// production.
type serveHooks struct {
	routes    func(e *echo.Echo)
	listening func(addr string)
	// tracer, when set, replaces the OTLP tracer provider (tests record
	// spans in memory).
	tracer trace.TracerProvider
	// admin, when set, learns the admin listener's address (with
	// PAYMENTS_ADMIN_ADDR), before listening is called.
	admin func(addr string)
}

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hooks *serveHooks) error {
	if wantsHelp(args) {
		fmt.Fprintln(stdout, "usage: payments serve\n\nEnvironment:")
		printSettings(stdout)
		return errHelp
	}
	if len(args) != 0 {
		return fmt.Errorf("%w: serve takes no arguments (configure it through the environment)", errUsage)
	}
	c, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(c, stderr)
	routeLibraryLogs(log)

	if c.DatabaseURL == "" {
		dsn, stop, err := startEmbedded(ctx, c, log)
		if err != nil {
			return err
		}
		defer stop() // after the pool below is closed
		c.DatabaseURL = dsn
	} else if c.DataDir != "" || c.PostgresBin != "" {
		log.WarnContext(ctx, "PAYMENTS_DATA_DIR and PAYMENTS_POSTGRES_BIN are ignored: DATABASE_URL is set, so the embedded PostgreSQL does not run")
	}
	if err := ensureDatabase(ctx, c.DatabaseURL, log); err != nil {
		return err
	}
	db, sqlDB, err := openDB(c)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	tp, stopTracing, err := startTracing(ctx, c)
	if err != nil {
		return err
	}
	defer stopTracing()
	if hooks != nil && hooks.tracer != nil {
		tp = hooks.tracer
	}
	if tp != nil {
		if err := postgres.Trace(db, tp); err != nil {
			return fmt.Errorf("trace database statements: %w", err)
		}
	}
	if c.Migrate {
		if err := postgres.MigrateUp(ctx, sqlDB, log); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(sqlDB, "payments"))

	app, err := wire(ctx, c, db, reg, log, tp)
	if err != nil {
		return err
	}
	defer app.close()

	if c.DebugPprofAddr != "" {
		stopPprof, err := startDebugPprof(ctx, c.DebugPprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	// draining is set on SIGTERM: /readyz then answers 503 for
	// PAYMENTS_SHUTDOWN_DELAY while everything else is still served.
	var draining atomic.Bool
	edgeConfig := handlers.Config{
		Logger:    log,
		Registry:  reg,
		BodyLimit: c.BodyLimit,
		// A request that runs past the write timeout could not answer
		// anyway: its context ends then, so it stops using the node.
		RequestTimeout: c.WriteTimeout,
		Ping:           sqlDB.PingContext,
		ErrorNamespace: c.ErrorNamespace,
		PublicURL:      c.PublicURL,
		Tracer:         tp,
		Checks:         app.checks,
		Draining:       draining.Load,
		Status:         app.status,
		Routes: func(e *echo.Echo) error {
			if hooks != nil && hooks.routes != nil {
				hooks.routes(e)
			}
			return app.routes(e)
		},
		AdminRoutes: app.adminRoutes,
	}
	edge, err := handlers.NewEdge(edgeConfig)
	if err != nil {
		return err
	}

	public, err := listenHTTP(ctx, "public", "PAYMENTS_ADDR", c.Addr, edge.Public, c, log)
	if err != nil {
		return err
	}
	listeners := []*httpListener{public}
	if edge.Admin != nil {
		admin, err := listenHTTP(ctx, "admin", "PAYMENTS_ADMIN_ADDR", c.AdminAddr, edge.Admin, c, log)
		if err != nil {
			closeAll(listeners)
			return err
		}
		listeners = append(listeners, admin)
	}

	if c.TLSCertFile != "" {
		// HTTPS on the public listener; the admin listener stays plain
		// HTTP on its private address.
		certs, err := newCertReloader(c.TLSCertFile, c.TLSKeyFile, log)
		if err != nil {
			closeAll(listeners)
			return err
		}
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go certs.watch(wctx, 10*time.Second)
		public.srv.TLSConfig = certs.tlsConfig()
	}
	served := serveAll(listeners)
	attrs := []any{"addr", public.addr(), "tls", c.TLSCertFile != "", "public_url", c.PublicURL, "version", buildVersion(), "dev_auth", c.DevAuth}
	if len(listeners) > 1 {
		attrs = append(attrs, "admin_addr", listeners[1].addr(), "admin_public_url", c.AdminPublicURL)
	}
	log.InfoContext(ctx, "serving", attrs...)
	warnPublicPort(ctx, public.addr(), c.PublicURL, log)
	if hooks != nil && hooks.admin != nil && len(listeners) > 1 {
		hooks.admin(listeners[1].addr())
	}
	if hooks != nil && hooks.listening != nil {
		hooks.listening(public.addr())
	}

	select {
	case err := <-served:
		closeAll(listeners)
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	if c.ShutdownDelay > 0 {
		// Load balancers see the 503 and stop sending new requests; the
		// ones that still come are served.
		log.Info("draining: /readyz answers 503 until the listeners close", "delay", c.ShutdownDelay.String())
		t := time.NewTimer(c.ShutdownDelay)
		select {
		case <-t.C:
		case err := <-served:
			t.Stop()
			closeAll(listeners)
			return err
		}
	}
	log.Info("shutting down", "grace", c.ShutdownGrace.String())
	if err := shutdownAll(listeners, c.ShutdownGrace); err != nil {
		return err
	}
	for range listeners {
		if err := <-served; err != nil {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

func newLogger(c config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// msgPublicPort is the warning warnPublicPort logs.
const msgPublicPort = "PAYMENTS_ADDR listens on another port than PAYMENTS_PUBLIC_URL names: " +
	"a DPoP proof's htu must be the public URL (PAYMENTS_PUBLIC_URL plus the path), so a client that calls the listen port, " +
	"or 127.0.0.1 instead of the public host, is refused with htu does not match this request; " +
	"fine behind a proxy that serves the public URL, otherwise set PAYMENTS_PUBLIC_URL to the URL clients call"

// warnPublicPort logs a WARN when the port the service listens on (addr, as
// bound, so that port 0 is the port actually chosen) is not the port of the
// public URL (its explicit port, or 80 for http and 443 for https): then the
// URL clients reach the service at directly is not the one DPoP proofs must
// name. Behind a proxy this is expected; on a laptop it is the usual reason
// for an htu refusal.
func warnPublicPort(ctx context.Context, addr, publicURL string, log *slog.Logger) {
	listen, public, differ := portMismatch(addr, publicURL)
	if differ {
		log.WarnContext(ctx, msgPublicPort, "listen_port", listen, "public_url", publicURL, "public_url_port", public)
	}
}

// portMismatch returns the port of the listen address addr and the port of
// publicURL (explicit, or the scheme's default), and whether both are known
// and differ.
func portMismatch(addr, publicURL string) (listen, public string, differ bool) {
	_, listen, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", false
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return listen, "", false
	}
	public = u.Port()
	if public == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			public = "80"
		case "https":
			public = "443"
		default:
			return listen, "", false
		}
	}
	return listen, public, listen != public
}
