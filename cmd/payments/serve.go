package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/obpay/payments/internal/handlers"
	"github.com/obpay/payments/internal/postgres"
)

// serveHooks lets tests add routes and learn the bound address. Nil in
// production.
type serveHooks struct {
	routes    func(e *echo.Echo)
	listening func(addr string)
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
	if c.Migrate {
		if err := postgres.MigrateUp(ctx, sqlDB, log); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(sqlDB, "payments"))

	app, err := wire(ctx, c, db, reg, log)
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

	e, err := handlers.New(handlers.Config{
		Logger:    log,
		Registry:  reg,
		BodyLimit: c.BodyLimit,
		// A request that runs past the write timeout could not answer
		// anyway: its context ends then, so it stops using the node.
		RequestTimeout: c.WriteTimeout,
		Ping:           sqlDB.PingContext,
		Status:         app.status,
		Routes: func(e *echo.Echo) error {
			if hooks != nil && hooks.routes != nil {
				hooks.routes(e)
			}
			return app.routes(e)
		},
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("PAYMENTS_ADDR=%q: %w", c.Addr, err)
	}
	srv := handlers.HTTPServer(c.Addr, e, handlers.Timeouts{
		ReadHeader: c.ReadHeaderLimit, Read: c.ReadTimeout, Write: c.WriteTimeout, Idle: c.IdleTimeout,
	})
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	conns := newConnTracker()
	srv.ConnState = conns.track

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.InfoContext(ctx, "serving", "addr", ln.Addr().String(), "public_url", c.PublicURL,
		"version", buildVersion(), "dev_auth", c.DevAuth)
	if hooks != nil && hooks.listening != nil {
		hooks.listening(ln.Addr().String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", c.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownGrace)
	defer cancel()
	// Shutdown closes the listener and the idle connections, then waits for
	// the busy ones; connections that never sent a request are closed here.
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(sctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var shutdownErr error
wait:
	for {
		conns.closeFresh()
		select {
		case shutdownErr = <-stopped:
			break wait
		case <-tick.C:
		}
	}
	if shutdownErr != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", c.ShutdownGrace, shutdownErr)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
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
