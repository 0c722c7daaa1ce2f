package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/devauth"
	"github.com/obpay/payments/internal/fixtures"
	"github.com/obpay/payments/internal/handlers"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/postgres/authstore"
	"github.com/obpay/payments/internal/security"
)

// application holds what serve built beyond the HTTP edge.
type application struct {
	routes func(e *echo.Echo) error
	// checks are what readiness needs besides the database: Redis when it
	// is the replay store.
	checks []handlers.ReadyCheck
	// adminRoutes registers the back office and the profiles on the admin
	// listener; nil without PAYMENTS_ADMIN_ADDR (routes has the back office).
	adminRoutes func(e *echo.Echo) error
	closers     []func() error
	// status adds the authorization server's state to /readyz's body when
	// PAYMENTS_ISSUER is set; nil otherwise.
	status func(context.Context) map[string]string
}

func (a *application) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i]()
	}
}

// wire builds the ledger, the Open Banking services and the security layer
// from the configuration.
func wire(ctx context.Context, c config, db *gorm.DB, reg prometheus.Registerer, log *slog.Logger, tp trace.TracerProvider) (*application, error) {
	app := &application{}
	l, err := postgres.NewLedger(db)
	if err != nil {
		return nil, err
	}
	if c.DevAuth {
		// The sandbox's customers, alice and bob, with their funded
		// accounts: opened on an empty database, found (and logged) later.
		if _, err := fixtures.Seed(ctx, l, log); err != nil {
			return nil, err
		}
	}
	store, err := postgres.NewStore(l, postgres.StoreConfig{})
	if err != nil {
		return nil, err
	}
	business, err := newBusinessMetrics(reg)
	if err != nil {
		return nil, err
	}
	svc, err := openbanking.New(openbanking.Config{Store: store, TransactionsPageSize: c.TransactionsPageSize, Observer: business})
	if err != nil {
		return nil, err
	}
	h, err := handlers.NewHandler(handlers.HandlerConfig{Service: svc, Logger: log, PublicURL: c.PublicURL, Location: c.Timezone})
	if err != nil {
		return nil, err
	}
	replay, closeReplay, err := security.OpenReplayStore(c.ReplayStore)
	if err != nil {
		return nil, fmt.Errorf("PAYMENTS_REPLAY_STORE: %w", err)
	}
	app.closers = append(app.closers, closeReplay)
	if mem, ok := replay.(*security.MemoryReplayStore); ok {
		if err := registerReplayFill(reg, mem); err != nil {
			return nil, err
		}
	}
	if rs, ok := replay.(*security.RedisReplayStore); ok {
		app.checks = append(app.checks, handlers.ReadyCheck{Name: "Redis", Ping: rs.Ping})
		if err := pingReplayStore(ctx, rs, c, log); err != nil {
			app.close()
			return nil, err
		}
	}
	warnReplayStore(ctx, c, log)
	warnIntrospectionAuth(ctx, c, log)

	// The introspection client, for a configured endpoint or a discovered one.
	introCfg := withClientAuth(c, security.IntrospectionConfig{
		ClientID:     c.IntrospectionClientID,
		ClientSecret: c.IntrospectionSecret,
		Timeout:      c.IntrospectionTimeout,
		CacheTTL:     cacheTTL(c.IntrospectionCacheTTL),
		Logger:       log,
		Registerer:   reg,
		HTTPClient:   introspectionClient(tp),
	})
	var intro security.Introspector
	if c.IntrospectionURL != "" {
		cfg := introCfg
		cfg.URL = c.IntrospectionURL
		hi, err := security.NewHTTPIntrospector(cfg)
		if err != nil {
			app.close()
			return nil, fmt.Errorf("PAYMENTS_INTROSPECTION_URL: %w", err)
		}
		app.closers = append(app.closers, func() error { hi.Close(); return nil })
		intro = hi
	}
	var disc *security.Discovery
	if c.Issuer != "" {
		disc, err = startDiscovery(ctx, app, c, log)
		if err != nil {
			app.close()
			return nil, fmt.Errorf("PAYMENTS_ISSUER: %w", err)
		}
		app.status = func(context.Context) map[string]string {
			return map[string]string{"AuthorizationServer": disc.Status()}
		}
		if intro == nil && c.AccessTokens != security.AccessTokensJWT {
			// RFC 8414 §2 introspection_endpoint, once the metadata is known.
			di, err := security.NewDiscoveredIntrospector(disc, introCfg)
			if err != nil {
				app.close()
				return nil, fmt.Errorf("PAYMENTS_ISSUER: introspection: %w", err)
			}
			app.closers = append(app.closers, func() error { di.Close(); return nil })
			intro = di
		}
	}
	var sandboxTokens *devauth.Tokens
	if c.DevAuth {
		// The sandbox authorization server keeps its state in the database,
		// so a restart strands no consent and signs no one out, and answers
		// introspection in-process from the tokens its token endpoint writes.
		as, err := authstore.New(db)
		if err != nil {
			app.close()
			return nil, err
		}
		// Its active answers are reused for PAYMENTS_INTROSPECTION_CACHE_TTL
		// like an external server's, so a request costs no database lookup
		// for its token.
		sandboxTokens, err = devauth.NewStoredTokens(devauth.TokensConfig{Store: as, Now: time.Now,
			MaxPerClient: c.DevAuthMaxTokensPerClient, CacheTTL: c.IntrospectionCacheTTL})
		if err != nil {
			app.close()
			return nil, fmt.Errorf("PAYMENTS_DEV_AUTH_MAX_TOKENS_PER_CLIENT: %w", err)
		}
		if intro == nil {
			intro = sandboxTokens
		}
	}
	if intro == nil && (disc == nil || c.AccessTokens != security.AccessTokensJWT) {
		app.close()
		return nil, errors.New("no introspection: set PAYMENTS_INTROSPECTION_URL, PAYMENTS_ISSUER or PAYMENTS_DEV_AUTH=true")
	}
	if disc != nil && c.AccessTokens != security.AccessTokensIntrospect {
		// RFC 9068: JWT access tokens are validated with the issuer's JWKS.
		r, err := security.NewTokenResolver(security.TokenResolverConfig{
			Mode:         c.AccessTokens,
			Discovery:    disc,
			Introspector: intro,
			Audience:     c.Audience,
			Skew:         c.DPoPSkew,
		})
		if err != nil {
			app.close()
			return nil, fmt.Errorf("PAYMENTS_ACCESS_TOKENS: %w", err)
		}
		app.closers = append(app.closers, func() error { r.Close(); return nil })
		intro = r
	}

	metadataURL, err := handlers.ResourceMetadataURL(c.PublicURL)
	if err != nil {
		app.close()
		return nil, fmt.Errorf("PAYMENTS_PUBLIC_URL: %w", err)
	}
	verifier, err := security.NewVerifier(security.Config{
		Algs:         c.DPoPAlgs,
		PublicURL:    c.PublicURL,
		MaxAge:       c.DPoPMaxAge,
		Skew:         c.DPoPSkew,
		NonceMode:    c.DPoPNonce,
		NonceSecret:  []byte(c.DPoPNonceSecret),
		NonceWindow:  c.DPoPNonceWindow,
		ReplayStore:  replay,
		Introspector: intro,
		Audience:     c.Audience,
		Registerer:   reg,
		Logger:       log,

		// RFC 9728 §5.1: 401 challenges name the metadata document.
		ResourceMetadata: metadataURL,
	})
	if err != nil {
		app.close()
		return nil, err
	}
	dpop, err := security.NewMiddleware(security.MiddlewareConfig{Verifier: verifier, Tracer: tp})
	if err != nil {
		app.close()
		return nil, err
	}
	// On the admin listener the back office's proofs name its own URL.
	var adminDPoP echo.MiddlewareFunc
	if c.AdminAddr != "" {
		adminDPoP, err = security.NewMiddleware(security.MiddlewareConfig{Verifier: verifier, PublicURL: c.AdminPublicURL, Tracer: tp})
		if err != nil {
			app.close()
			return nil, fmt.Errorf("PAYMENTS_ADMIN_PUBLIC_URL: %w", err)
		}
	}
	if err := withRateLimit(c.RateLimit, reg, &dpop, &adminDPoP); err != nil {
		app.close()
		return nil, fmt.Errorf("PAYMENTS_RATE_LIMIT: %w", err)
	}
	var sandbox *devauth.Server
	if c.DevAuth {
		sandbox, err = devauth.New(devauth.Config{Verifier: verifier, Consents: svc, Tokens: sandboxTokens, Logger: log,
			RequirePAR: c.DevAuthRequirePAR, Customers: svc, Password: c.DevAuthPassword, NoAutoApprove: !c.DevAuthAutoApprove})
		if err != nil {
			app.close()
			return nil, err
		}
	}
	app.closers = append(app.closers, startPurge(ctx, "idempotency_keys", svc.PurgeExpiredKeys, purgeEvery, purgeBatch, log))
	if sandboxTokens != nil {
		app.closers = append(app.closers, startPurge(ctx, "devauth", sandboxTokens.Purge, purgeEvery, purgeBatch, log))
	}
	app.routes = func(e *echo.Echo) error {
		if sandbox != nil {
			sandbox.Register(e)
		}
		err := handlers.RegisterResourceMetadata(e, handlers.ResourceMetadataConfig{
			PublicURL:            c.PublicURL,
			AuthorizationServers: authorizationServers(c),
			DPoPAlgs:             strings.Fields(verifier.Algs()),
		})
		if err != nil {
			return err
		}
		if adminDPoP != nil {
			return handlers.RegisterAPIRoutes(e, h, dpop)
		}
		return handlers.RegisterRoutes(e, h, dpop)
	}
	if adminDPoP != nil {
		app.adminRoutes = func(e *echo.Echo) error {
			registerPprof(e)
			return handlers.RegisterBackOfficeRoutes(e, h, adminDPoP)
		}
	}
	return app, nil
}

// msgMemoryReplayStore is the warning warnReplayStore logs.
const msgMemoryReplayStore = "PAYMENTS_REPLAY_STORE=memory with PAYMENTS_DPOP_NONCE_SECRET set (several nodes): " +
	"each node records proofs only in its own memory, so a DPoP proof is accepted once per node and again after a restart; " +
	"set PAYMENTS_REPLAY_STORE=redis://host:port/db, one Redis shared by all nodes"

// warnReplayStore logs a WARN when the configuration is the one of several
// nodes (a nonce secret shared so that any node accepts any node's nonces)
// but replay protection is per process (RFC 9449 §11.1 asks for a proof to be
// accepted once).
func warnReplayStore(ctx context.Context, c config, log *slog.Logger) {
	if (c.ReplayStore == "memory" || c.ReplayStore == "") && c.DPoPNonceSecret != "" {
		log.WarnContext(ctx, msgMemoryReplayStore)
	}
}

// replayStartTimeout bounds serve's first ping of the Redis replay store.
const replayStartTimeout = 2 * time.Second

// msgReplayStoreDown is the warning pingReplayStore logs.
const msgReplayStoreDown = "PAYMENTS_REPLAY_STORE: Redis does not answer; serving anyway: " +
	"DPoP-protected requests answer 503 and /readyz reports Redis until it answers " +
	"(PAYMENTS_REPLAY_STORE_REQUIRED=true exits instead)"

// pingReplayStore checks at start that the Redis replay store answers. When
// it does not, serve exits with PAYMENTS_REPLAY_STORE_REQUIRED=true, and
// otherwise logs a WARN and starts: the store fails closed until Redis is
// back, so nothing is accepted without replay protection meanwhile.
func pingReplayStore(ctx context.Context, rs *security.RedisReplayStore, c config, log *slog.Logger) error {
	pctx, cancel := context.WithTimeout(ctx, replayStartTimeout)
	defer cancel()
	err := rs.Ping(pctx)
	switch {
	case err == nil:
		return nil
	case c.ReplayStoreRequired:
		return fmt.Errorf("PAYMENTS_REPLAY_STORE: Redis does not answer and PAYMENTS_REPLAY_STORE_REQUIRED=true: %w", err)
	}
	log.WarnContext(ctx, msgReplayStoreDown, "error", err.Error())
	return nil
}

// authorizationServers returns the issuers that protected-resource metadata
// names (RFC 9728 §2 authorization_servers): PAYMENTS_ISSUER when set, else
// the sandbox authorization server, whose issuer is the public URL, when
// PAYMENTS_DEV_AUTH=true, else none (the member is left out).
func authorizationServers(c config) []string {
	switch {
	case c.Issuer != "":
		return []string{c.Issuer}
	case c.DevAuth:
		return []string{strings.TrimSuffix(c.PublicURL, "/")}
	}
	return nil
}

// startDiscovery fetches the issuer's RFC 8414 metadata once, then keeps it
// fresh in the background until the application closes. An authorization
// server that does not answer at start does not stop the service: it is
// retried with backoff, requests that need it answer 503 meanwhile, and
// /readyz reports it.
func startDiscovery(ctx context.Context, app *application, c config, log *slog.Logger) (*security.Discovery, error) {
	disc, err := security.NewDiscovery(security.DiscoveryConfig{Issuer: c.Issuer, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := disc.Fetch(ctx); err != nil {
		log.WarnContext(ctx, "authorization server metadata not available at start; retrying",
			"issuer", c.Issuer, "error", err.Error())
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); disc.Run(runCtx) }()
	app.closers = append(app.closers, func() error { cancel(); <-done; return nil })
	return disc, nil
}

// cacheTTL maps the configured TTL to the introspector's: zero in the
// environment means "do not cache", which the introspector spells negative.
func cacheTTL(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
