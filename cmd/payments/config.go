package main

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
	// The IANA time zone database is built in, so PAYMENTS_TIMEZONE works on
	// hosts and images without one.
	_ "time/tzdata"

	"github.com/obpay/payments/internal/security"
)

// config is everything the process reads from its environment, validated.
// No other package reads environment variables.
type config struct {
	Addr      string
	PublicURL string
	// AdminAddr is the admin listener's address (PAYMENTS_ADMIN_ADDR); empty
	// means one listener serves everything. AdminPublicURL is the URL back
	// office proofs name in htu, defaulted from AdminAddr by loadConfig.
	AdminAddr      string
	AdminPublicURL string

	// DatabaseURL is the external server's URL; empty means serve runs the
	// embedded PostgreSQL, in DataDir with the binaries of PostgresBin
	// (empty: found or downloaded).
	DatabaseURL     string
	DataDir         string
	PostgresBin     string
	Migrate         bool
	DBMaxOpenConns  int
	DBMaxIdleConns  int
	DBConnMaxLife   time.Duration
	DBConnMaxIdle   time.Duration
	ShutdownGrace   time.Duration
	ShutdownDelay   time.Duration // /readyz 503 before the listeners close
	BodyLimit       int64
	ReadHeaderLimit time.Duration
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration

	// Issuer is the authorization server's issuer identifier
	// (PAYMENTS_ISSUER, RFC 8414 §2): an https URL (http only on a loopback
	// host) without query or fragment; empty when unset.
	Issuer string
	// AccessTokens is "auto", "introspect" or "jwt" (PAYMENTS_ACCESS_TOKENS):
	// how access tokens are resolved once Issuer is set.
	AccessTokens string

	IntrospectionURL      string
	IntrospectionClientID string
	IntrospectionSecret   string
	// IntrospectionAuthMethod is how the service authenticates to the
	// introspection endpoint: client_secret_basic (default),
	// client_secret_post or private_key_jwt.
	IntrospectionAuthMethod string
	// IntrospectionKeyFile and IntrospectionKeyID are the private key's
	// path and kid for private_key_jwt; IntrospectionKey is that key, loaded
	// by loadConfig (nil with the other methods), and IntrospectionKeyMode
	// its file's permission bits.
	IntrospectionKeyFile  string
	IntrospectionKeyID    string
	IntrospectionKey      crypto.Signer
	IntrospectionKeyMode  fs.FileMode
	IntrospectionTimeout  time.Duration
	IntrospectionCacheTTL time.Duration
	Audience              string
	DevAuth               bool
	// DevAuthRequirePAR makes the sandbox authorization server refuse
	// authorization requests that were not pushed to /oauth2/par first.
	DevAuthRequirePAR bool
	// DevAuthPassword is the sandbox customers' password on the consent
	// page; DevAuthAutoApprove keeps approving requests that name psu at
	// once (false: every customer goes through the page).
	DevAuthPassword    string
	DevAuthAutoApprove bool
	// DevAuthMaxTokensPerClient is how many live access tokens (and as
	// many refresh tokens and authorization codes) one sandbox client may
	// hold; past it that client gets 429.
	DevAuthMaxTokensPerClient int

	DPoPAlgs        []string
	DPoPNonce       string
	DPoPNonceSecret string
	DPoPNonceWindow time.Duration
	DPoPMaxAge      time.Duration
	DPoPSkew        time.Duration
	ReplayStore     string
	// ReplayStoreRequired makes serve exit when the Redis replay store does
	// not answer at start (otherwise it warns and fails closed until then).
	ReplayStoreRequired bool

	// RateLimit is PAYMENTS_RATE_LIMIT (see ratelimit.go); zero is off.
	RateLimit rateLimit

	LogLevel  slog.Level
	LogFormat string

	DebugPprofAddr string

	// OTelEndpoint is the URL traces are sent to, which turns tracing on:
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
	// plus /v1/traces. The OpenTelemetry exporter reads the other OTEL_*
	// variables (headers, timeout, TLS) itself. OTelProtocol is
	// OTEL_EXPORTER_OTLP_PROTOCOL.
	OTelEndpoint string
	OTelProtocol string

	// TLSCertFile and TLSKeyFile, both set, make serve answer HTTPS itself.
	TLSCertFile string
	TLSKeyFile  string

	TransactionsPageSize int
	// ErrorNamespace prefixes the error codes OB defines none for
	// (PAYMENTS_ERROR_NAMESPACE).
	ErrorNamespace string
	// Timezone is the bank's timezone (PAYMENTS_TIMEZONE), in which AISP
	// query date-times without an offset are read. Never nil after loadConfig.
	Timezone *time.Location
}

// setting is one environment variable: its default, its meaning, and how it
// is parsed into config.
type setting struct {
	name, def, help string
	secret          bool
	parse           func(c *config, v string) error
}

// settings lists every environment variable the service reads, in the order
// --help prints them.
var settings = []setting{
	{name: "PAYMENTS_ADDR", def: ":8080", help: "listen address",
		parse: func(c *config, v string) error { c.Addr = v; return checkListenAddr(v) }},
	{name: "PAYMENTS_PUBLIC_URL", def: "http://localhost:8080", help: "external base URL clients call; DPoP htu is checked against it",
		parse: func(c *config, v string) error { c.PublicURL = v; return checkPublicURL(v) }},
	{name: "PAYMENTS_ADMIN_ADDR", def: "", help: "admin listener, e.g. 127.0.0.1:9090 or a private interface: when set, the back office (/internal/v1), /metrics and /debug/pprof/ are served there only and answer 404 on PAYMENTS_ADDR (empty: one listener, no pprof)",
		parse: func(c *config, v string) error {
			c.AdminAddr = v
			if v == "" {
				return nil
			}
			return checkListenAddr(v)
		}},
	{name: "PAYMENTS_ADMIN_PUBLIC_URL", def: "", help: "base URL back office clients call on the admin listener; their DPoP htu is checked against it (empty: http:// and PAYMENTS_ADMIN_ADDR, an unspecified host such as :9090 or 0.0.0.0 read as 127.0.0.1)",
		parse: func(c *config, v string) error {
			c.AdminPublicURL = v
			if v == "" {
				return nil
			}
			return checkPublicURL(v)
		}},
	{name: "DATABASE_URL", def: "", help: "URL of an external PostgreSQL, e.g. postgres://user:pass@db:5432/payments (production; serve creates the database when missing); unset: an embedded PostgreSQL for development and evaluation", secret: true,
		parse: func(c *config, v string) error { c.DatabaseURL = v; return checkDatabaseURL(v) }},
	{name: "PAYMENTS_DATA_DIR", def: "", help: "embedded PostgreSQL only: its data directory (unset: $XDG_DATA_HOME/payments, i.e. ~/.local/share/payments; /var/lib/payments for root)",
		parse: func(c *config, v string) error { c.DataDir = v; return checkAbsPath(v) }},
	{name: "PAYMENTS_POSTGRES_BIN", def: "", help: "embedded PostgreSQL only: directory of its initdb and postgres (unset: a local installation, else a pinned build downloaded once)",
		parse: func(c *config, v string) error { c.PostgresBin = v; return checkAbsPath(v) }},
	{name: "PAYMENTS_MIGRATE", def: "true", help: "apply migrations when serve starts",
		parse: func(c *config, v string) (err error) { c.Migrate, err = parseBool(v); return }},
	{name: "PAYMENTS_DB_MAX_OPEN_CONNS", def: "20", help: "database pool: most open connections",
		parse: func(c *config, v string) (err error) { c.DBMaxOpenConns, err = positiveInt(v); return }},
	{name: "PAYMENTS_DB_MAX_IDLE_CONNS", def: "20", help: "database pool: most idle connections",
		parse: func(c *config, v string) (err error) { c.DBMaxIdleConns, err = positiveInt(v); return }},
	{name: "PAYMENTS_DB_CONN_MAX_LIFETIME", def: "30m", help: "database pool: a connection is recycled after this long",
		parse: func(c *config, v string) (err error) { c.DBConnMaxLife, err = positiveDuration(v); return }},
	{name: "PAYMENTS_DB_CONN_MAX_IDLE_TIME", def: "5m", help: "database pool: an idle connection is closed after this long",
		parse: func(c *config, v string) (err error) { c.DBConnMaxIdle, err = positiveDuration(v); return }},
	{name: "PAYMENTS_SHUTDOWN_GRACE", def: "20s", help: "on SIGINT/SIGTERM, how long in-flight requests may take to finish",
		parse: func(c *config, v string) (err error) { c.ShutdownGrace, err = positiveDuration(v); return }},
	{name: "PAYMENTS_SHUTDOWN_DELAY", def: "0s", help: "on SIGINT/SIGTERM, how long /readyz answers 503 while requests are still served, so that load balancers stop sending traffic, before the listeners close (at most 5m)",
		parse: func(c *config, v string) (err error) {
			c.ShutdownDelay, err = durationWithin(v, 0, maxShutdownDelay)
			return
		}},
	{name: "PAYMENTS_BODY_LIMIT", def: "65536", help: "largest request body in bytes (413 above)",
		parse: func(c *config, v string) error {
			n, err := positiveInt(v)
			c.BodyLimit = int64(n)
			return err
		}},
	{name: "PAYMENTS_READ_HEADER_TIMEOUT", def: "5s", help: "HTTP: time to read request headers",
		parse: func(c *config, v string) (err error) { c.ReadHeaderLimit, err = positiveDuration(v); return }},
	{name: "PAYMENTS_READ_TIMEOUT", def: "15s", help: "HTTP: time to read a whole request",
		parse: func(c *config, v string) (err error) { c.ReadTimeout, err = positiveDuration(v); return }},
	{name: "PAYMENTS_WRITE_TIMEOUT", def: "30s", help: "HTTP: time to write a response",
		parse: func(c *config, v string) (err error) { c.WriteTimeout, err = positiveDuration(v); return }},
	{name: "PAYMENTS_IDLE_TIMEOUT", def: "120s", help: "HTTP: keep-alive idle time",
		parse: func(c *config, v string) (err error) { c.IdleTimeout, err = positiveDuration(v); return }},
	{name: "PAYMENTS_ISSUER", def: "", help: "issuer identifier of the authorization server (https; http only on loopback)",
		parse: func(c *config, v string) error { c.Issuer = v; return checkIssuer(v) }},
	{name: "PAYMENTS_ACCESS_TOKENS", def: "auto", help: "auto (JWT access tokens, typ at+jwt, validated with the issuer's JWKS; others introspected), introspect, or jwt (needs PAYMENTS_ISSUER)",
		parse: func(c *config, v string) error {
			c.AccessTokens = v
			switch v {
			case "auto", "introspect", "jwt":
				return nil
			}
			return errors.New("must be auto, introspect or jwt")
		}},
	{name: "PAYMENTS_INTROSPECTION_URL", def: "", help: "RFC 7662 endpoint of the authorization server (unset: PAYMENTS_ISSUER's metadata; one of them required unless PAYMENTS_DEV_AUTH=true)",
		parse: func(c *config, v string) error { c.IntrospectionURL = v; return optionalURL(v) }},
	{name: "PAYMENTS_INTROSPECTION_CLIENT_ID", def: "", help: "client id for introspection",
		parse: func(c *config, v string) error { c.IntrospectionClientID = v; return nil }},
	{name: "PAYMENTS_INTROSPECTION_CLIENT_SECRET", def: "", help: "client secret for introspection (client_secret_basic, client_secret_post)", secret: true,
		parse: func(c *config, v string) error { c.IntrospectionSecret = v; return nil }},
	{name: "PAYMENTS_INTROSPECTION_AUTH_METHOD", def: "client_secret_basic", help: "client authentication for introspection: client_secret_basic, client_secret_post or private_key_jwt (RFC 7523; aud = PAYMENTS_ISSUER)",
		parse: func(c *config, v string) error { c.IntrospectionAuthMethod = v; return checkAuthMethod(v) }},
	{name: "PAYMENTS_INTROSPECTION_PRIVATE_KEY", def: "", help: "private_key_jwt: path of the PKCS#8 PEM private key (EC P-256 -> ES256, RSA >= 2048 bits -> PS256, Ed25519 -> EdDSA), mode 600",
		parse: func(c *config, v string) error { c.IntrospectionKeyFile = v; return nil }},
	{name: "PAYMENTS_INTROSPECTION_KEY_ID", def: "", help: "private_key_jwt: the kid header of the client assertions (empty: none)",
		parse: func(c *config, v string) error { c.IntrospectionKeyID = v; return nil }},
	{name: "PAYMENTS_INTROSPECTION_TIMEOUT", def: "3s", help: "timeout of one introspection call",
		parse: func(c *config, v string) (err error) { c.IntrospectionTimeout, err = positiveDuration(v); return }},
	{name: "PAYMENTS_INTROSPECTION_CACHE_TTL", def: "30s", help: "how long an active introspection result is reused (never past exp; 0: not reused)",
		parse: func(c *config, v string) (err error) { c.IntrospectionCacheTTL, err = nonNegativeDuration(v); return }},
	{name: "PAYMENTS_AUDIENCE", def: "", help: "when set, the introspected aud must contain it",
		parse: func(c *config, v string) error { c.Audience = v; return nil }},
	{name: "PAYMENTS_DEV_AUTH", def: "false", help: "serve the sandbox authorization server under /oauth2/ (development only)",
		parse: func(c *config, v string) (err error) { c.DevAuth, err = parseBool(v); return }},
	{name: "PAYMENTS_DEV_AUTH_REQUIRE_PAR", def: "false", help: "the sandbox authorization server accepts only authorization requests pushed to /oauth2/par first (RFC 9126)",
		parse: func(c *config, v string) (err error) { c.DevAuthRequirePAR, err = parseBool(v); return }},
	{name: "PAYMENTS_DEV_AUTH_PASSWORD", def: "sandbox", help: "the one password of every sandbox customer on the consent page (development only)", secret: true,
		parse: func(c *config, v string) error {
			if v == "" || len(v) > 128 || strings.IndexFunc(v, unicode.IsControl) >= 0 || !utf8.ValidString(v) {
				return errors.New("must be 1 to 128 bytes of text without control characters")
			}
			c.DevAuthPassword = v
			return nil
		}},
	{name: "PAYMENTS_DEV_AUTH_AUTO_APPROVE", def: "true", help: "the sandbox authorization server approves requests that name psu at once; false: every customer signs in on the consent page",
		parse: func(c *config, v string) (err error) { c.DevAuthAutoApprove, err = parseBool(v); return }},
	{name: "PAYMENTS_DEV_AUTH_MAX_TOKENS_PER_CLIENT", def: "10000", help: "live access tokens one sandbox client may hold (as many refresh tokens and codes); past it that client alone gets 429 until some expire",
		parse: func(c *config, v string) (err error) { c.DevAuthMaxTokensPerClient, err = positiveInt(v); return }},
	{name: "PAYMENTS_DPOP_ALGS", def: "ES256,EdDSA,Ed25519,PS256", help: "allowed DPoP proof algorithms",
		parse: func(c *config, v string) (err error) { c.DPoPAlgs, err = parseAlgs(v); return }},
	{name: "PAYMENTS_DPOP_NONCE", def: "required", help: "DPoP nonces: required or off",
		parse: func(c *config, v string) error {
			c.DPoPNonce = v
			if v != "required" && v != "off" {
				return errors.New(`must be "required" or "off"`)
			}
			return nil
		}},
	{name: "PAYMENTS_DPOP_NONCE_SECRET", def: "", help: "HMAC key for stateless nonces, at least 32 bytes; same on every node (empty: random per process)", secret: true,
		parse: func(c *config, v string) error {
			c.DPoPNonceSecret = v
			if v != "" && len(v) < 32 {
				return fmt.Errorf("must be at least 32 bytes (has %d)", len(v))
			}
			return nil
		}},
	{name: "PAYMENTS_DPOP_NONCE_WINDOW", def: "5m", help: "lifetime of one nonce window (current and previous accepted), at least 1s",
		parse: func(c *config, v string) (err error) {
			c.DPoPNonceWindow, err = durationWithin(v, minNonceWindow, 0)
			return
		}},
	{name: "PAYMENTS_DPOP_MAX_AGE", def: "60s", help: "a proof's iat may be at most this old (at most 5m)",
		parse: func(c *config, v string) (err error) {
			if c.DPoPMaxAge, err = positiveDuration(v); err == nil {
				c.DPoPMaxAge, err = durationWithin(v, 0, maxDPoPMaxAge)
			}
			return
		}},
	{name: "PAYMENTS_DPOP_SKEW", def: "10s", help: "a proof's iat may be at most this far in the future (at most 60s; 0 means the default, 10s)",
		parse: func(c *config, v string) error {
			d, err := durationWithin(v, 0, maxDPoPSkew)
			c.DPoPSkew = d
			return err
		}},
	{name: "PAYMENTS_REPLAY_STORE", def: "memory", help: "DPoP replay store: memory, or redis://host:port/db shared by all nodes", secret: true,
		parse: func(c *config, v string) error { c.ReplayStore = v; return checkReplayStore(v) }},
	{name: "PAYMENTS_REPLAY_STORE_REQUIRED", def: "false", help: "true: serve exits when the Redis replay store does not answer at start; false: it logs a WARN, and DPoP-protected requests answer 503 until Redis answers",
		parse: func(c *config, v string) (err error) { c.ReplayStoreRequired, err = parseBool(v); return }},
	{name: "PAYMENTS_RATE_LIMIT", def: "off", help: "per-client rate limit on each node, by the verified token's client id: off, or N/s or N/m with an optional burst, e.g. 50/s,burst=100 (burst default: N); over it: 429 with Retry-After",
		parse: func(c *config, v string) (err error) { c.RateLimit, err = parseRateLimit(v); return }},
	{name: "PAYMENTS_LOG_LEVEL", def: "info", help: "debug, info, warn or error",
		parse: func(c *config, v string) error {
			if c.LogLevel.UnmarshalText([]byte(v)) != nil {
				return errors.New("must be debug, info, warn or error")
			}
			return nil
		}},
	{name: "PAYMENTS_LOG_FORMAT", def: "json", help: "json or text",
		parse: func(c *config, v string) error {
			c.LogFormat = v
			if v != "json" && v != "text" {
				return errors.New(`must be "json" or "text"`)
			}
			return nil
		}},
	{name: "PAYMENTS_TRANSACTIONS_PAGE_SIZE", def: "100", help: "AISP transactions per page (25 to 1000); Links.Next leads to the next page",
		parse: func(c *config, v string) error {
			n, err := positiveInt(v)
			if err == nil && (n < 25 || n > 1000) {
				err = errors.New("must be between 25 and 1000")
			}
			c.TransactionsPageSize = n
			return err
		}},
	{name: "PAYMENTS_ERROR_NAMESPACE", def: "OBPAY", help: "namespace of the error codes OB defines none for (401, 403, 405, 406, 413, 415, 429, 503 answers), e.g. OBPAY.Forbidden: 1 to 16 letters and digits, starting with a letter, not UK",
		parse: func(c *config, v string) error {
			c.ErrorNamespace = v
			if !errorNamespacePattern.MatchString(v) || strings.EqualFold(v, "UK") {
				return errors.New("must be 1 to 16 letters and digits starting with a letter, and not UK (OB reserves UK.OBIE)")
			}
			return nil
		}},
	{name: "PAYMENTS_TIMEZONE", def: "UTC", help: "IANA time zone in which AISP query date-times without an offset are read, e.g. Europe/London",
		parse: func(c *config, v string) (err error) { c.Timezone, err = parseTimezone(v); return }},
	{name: "PAYMENTS_TLS_CERT_FILE", def: "", help: "serve HTTPS with this PEM certificate chain (TLS 1.2+; reloaded on SIGHUP or when the file changes); unset: plain HTTP behind a TLS-terminating proxy",
		parse: func(c *config, v string) error { c.TLSCertFile = v; return nil }},
	{name: "PAYMENTS_TLS_KEY_FILE", def: "", help: "the PEM private key of PAYMENTS_TLS_CERT_FILE",
		parse: func(c *config, v string) error { c.TLSKeyFile = v; return nil }},
	{name: "OTEL_EXPORTER_OTLP_ENDPOINT", def: "", help: "OpenTelemetry: send traces over OTLP/HTTP to this collector, e.g. http://otel-collector:4318 (unset: no tracing); the exporter also reads the other standard OTEL_* variables",
		parse: func(c *config, v string) error {
			if v != "" {
				c.OTelEndpoint = strings.TrimSuffix(v, "/") + "/v1/traces"
			}
			return optionalURL(v)
		}},
	{name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", def: "", help: "OpenTelemetry: the traces endpoint itself, e.g. http://otel-collector:4318/v1/traces (set instead of, or over, OTEL_EXPORTER_OTLP_ENDPOINT)",
		parse: func(c *config, v string) error {
			if v != "" {
				c.OTelEndpoint = v
			}
			return optionalURL(v)
		}},
	{name: "OTEL_EXPORTER_OTLP_PROTOCOL", def: "", help: "OpenTelemetry: http/protobuf (the only one supported; unset means it)",
		parse: func(c *config, v string) error {
			c.OTelProtocol = v
			if v != "" && v != "http/protobuf" {
				return errors.New("only http/protobuf is supported")
			}
			return nil
		}},
	{name: "PAYMENTS_DEBUG_PPROF_ADDR", def: "", help: "serve Go's pprof profiles on this loopback address, e.g. 127.0.0.1:6060 (empty: off; for profiling only)",
		parse: func(c *config, v string) error { c.DebugPprofAddr = v; return checkLoopbackAddr(v) }},
}

var errorNamespacePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,15}$`)

// loadConfig reads every setting through getenv, applies defaults and
// validates. The error names each variable that is wrong and why.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	var errs []error
	for _, s := range settings {
		v := strings.TrimSpace(getenv(s.name))
		if v == "" {
			v = s.def
		}
		if err := s.parse(&c, v); err != nil {
			shown := shownValue(v)
			if s.secret {
				shown = "(hidden)"
			}
			errs = append(errs, fmt.Errorf("%s=%s: %w", s.name, shown, err))
		}
	}
	if len(errs) == 0 {
		if !c.DevAuth && c.IntrospectionURL == "" && c.Issuer == "" {
			errs = append(errs, errors.New("PAYMENTS_INTROSPECTION_URL or PAYMENTS_ISSUER: one is required unless PAYMENTS_DEV_AUTH=true"))
		}
		if c.AccessTokens == "jwt" && c.Issuer == "" {
			errs = append(errs, errors.New("PAYMENTS_ACCESS_TOKENS=jwt: needs PAYMENTS_ISSUER (the keys come from its metadata)"))
		}
		if c.IntrospectionAuthMethod == security.AuthPrivateKeyJWT && (c.IntrospectionURL != "" || !c.DevAuth) {
			errs = append(errs, checkPrivateKeyJWT(&c)...)
		} else if c.IntrospectionURL != "" && (c.IntrospectionClientID == "" || c.IntrospectionSecret == "") {
			errs = append(errs, errors.New("PAYMENTS_INTROSPECTION_CLIENT_ID and PAYMENTS_INTROSPECTION_CLIENT_SECRET: required with PAYMENTS_INTROSPECTION_URL"))
		}
		if c.DevAuth && c.IntrospectionURL == "" && c.Audience != "" {
			errs = append(errs, errors.New("PAYMENTS_AUDIENCE: the sandbox authorization server issues tokens without aud; unset it or introspect against a real authorization server"))
		}
		if c.DatabaseURL == "" && c.DataDir == "" {
			var err error
			if c.DataDir, err = defaultDataDir(getenv, os.Geteuid() == 0); err != nil {
				errs = append(errs, err)
			}
		}
		if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
			errs = append(errs, errors.New("PAYMENTS_TLS_CERT_FILE and PAYMENTS_TLS_KEY_FILE: set both, or neither"))
		}
		if c.DBMaxIdleConns > c.DBMaxOpenConns {
			errs = append(errs, errors.New("PAYMENTS_DB_MAX_IDLE_CONNS: must not exceed PAYMENTS_DB_MAX_OPEN_CONNS"))
		}
		errs = append(errs, checkAdmin(&c)...)
		if c.ReplayStoreRequired && !strings.HasPrefix(c.ReplayStore, "redis") {
			errs = append(errs, errors.New("PAYMENTS_REPLAY_STORE_REQUIRED=true: needs PAYMENTS_REPLAY_STORE=redis://... (the memory store is always there)"))
		}
	}
	if len(errs) > 0 {
		return config{}, fmt.Errorf("invalid configuration:\n  %w", errors.Join(errs...))
	}
	return c, nil
}

// printSettings writes the environment table of --help.
func printSettings(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.name, def, s.help)
	}
	_ = tw.Flush()
}

// Bounds of the DPoP settings, the same as security.NewVerifier's; --help
// states them in the same words as the errors (TestHelpStatesEnforcedBounds).
const (
	minNonceWindow = time.Second
	maxDPoPMaxAge  = 5 * time.Minute
	maxDPoPSkew    = time.Minute
	// maxShutdownDelay bounds PAYMENTS_SHUTDOWN_DELAY: orchestrators kill a
	// process that takes much longer to stop.
	maxShutdownDelay = 5 * time.Minute
)

// shownValue is how a refused value appears in its error: as typed when it is
// plain printable ASCII, quoted otherwise (spaces, quotes, control or
// non-ASCII characters), so that the message stays on one line and shows
// what was read.
func shownValue(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.Quote(v)
		}
	}
	return v
}

// parseBool reads a boolean setting: true or false (and the other spellings
// strconv.ParseBool knows: 1, 0, t, f, TRUE, False, ...).
func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("must be true or false")
	}
	return b, nil
}

// durationWithin reads a duration, not negative, of at least min and, when
// max > 0, at most max; the errors name the bound as --help does (1s, 60s,
// 5m).
func durationWithin(v string, min, max time.Duration) (time.Duration, error) {
	d, err := nonNegativeDuration(v)
	switch {
	case err != nil:
		return 0, err
	case d < min:
		return 0, fmt.Errorf("must be at least %s", boundText(min))
	case max > 0 && d > max:
		return 0, fmt.Errorf("must be at most %s", boundText(max))
	}
	return d, nil
}

// boundText writes a bound as the help text does: 1s, 60s, 5m.
func boundText(d time.Duration) string {
	if d >= 2*time.Minute && d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// checkListenAddr accepts host:port (host may be empty, port a number or a
// service name net.Listen knows).
func checkListenAddr(v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return errors.New("must be host:port such as :8080 or 127.0.0.1:8080")
	}
	return nil
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("must be a whole number")
	}
	if n <= 0 {
		return 0, errors.New("must be greater than zero")
	}
	return n, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := nonNegativeDuration(v)
	if err == nil && d == 0 {
		err = errors.New("must be greater than zero")
	}
	return d, err
}

func nonNegativeDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("must be a Go duration such as 30s or 5m")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

func checkPublicURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL such as https://api.bank.example")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not carry user info, a query or a fragment")
	}
	for _, r := range v {
		if r > 0x7e {
			return errors.New("must be ASCII (use the punycode form of the host)")
		}
	}
	// What DPoP's htu comparison can normalise (RFC 3986 §6.2.2): a host
	// without a trailing dot and a port from 1 to 65535.
	if strings.HasSuffix(u.Hostname(), ".") || strings.ContainsAny(u.Host, "% ") {
		return errors.New("must be an absolute http(s) URL such as https://api.bank.example")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return errors.New("must have a port from 1 to 65535")
		}
	}
	return nil
}

func checkDatabaseURL(v string) error {
	if v == "" {
		return nil // the embedded server
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("must be a postgres:// URL")
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("must name a database in its path")
	}
	return nil
}

func checkAbsPath(v string) error {
	if v != "" && !filepath.IsAbs(v) {
		return errors.New("must be an absolute path")
	}
	return nil
}

// defaultDataDir is the embedded PostgreSQL's data directory when
// PAYMENTS_DATA_DIR is unset: the XDG data directory of a normal user, the
// system's for root.
func defaultDataDir(getenv func(string) string, root bool) (string, error) {
	if root {
		return "/var/lib/payments", nil
	}
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "payments"), nil
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "share", "payments"), nil
	}
	return "", errors.New("PAYMENTS_DATA_DIR: unset, and neither XDG_DATA_HOME nor HOME names a directory to put the embedded PostgreSQL in; set PAYMENTS_DATA_DIR or DATABASE_URL")
}

func optionalURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

// checkIssuer accepts "" (unset) or an issuer identifier as RFC 8414 §2
// defines it: an https URL with a host and no query or fragment. Plain http
// is accepted only for a loopback host (a local authorization server in
// development and tests).
func checkIssuer(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be an absolute https URL such as https://as.bank.example")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(v, "#") {
		return errors.New("must not carry user info, a query or a fragment (RFC 8414 §2)")
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("must use https (http only for a loopback host such as 127.0.0.1)")
		}
	}
	return nil
}

// checkLoopbackAddr accepts "" (off) or a host:port whose host is a loopback
// IP or localhost: profiles reveal internals and must never be reachable from
// the network.
func checkLoopbackAddr(v string) error {
	if v == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("must be host:port, e.g. 127.0.0.1:6060")
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("must be a loopback address (127.0.0.1, ::1 or localhost)")
	}
	return nil
}

func checkReplayStore(v string) error {
	if v == "memory" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return errors.New(`must be "memory" or a redis://host:port/db URL`)
	}
	return nil
}

func parseAlgs(v string) ([]string, error) {
	known := map[string]bool{"ES256": true, "EdDSA": true, "Ed25519": true, "PS256": true}
	var algs []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !known[a] {
			return nil, fmt.Errorf("unsupported algorithm %q (allowed: ES256, EdDSA, Ed25519, PS256)", a)
		}
		algs = append(algs, a)
	}
	if len(algs) == 0 {
		return nil, errors.New("must list at least one algorithm")
	}
	return algs, nil
}

// parseTimezone loads an IANA time zone name such as "Europe/London" or
// "UTC". "Local" is refused: the meaning of a query date-time must not depend
// on the host's settings.
func parseTimezone(v string) (*time.Location, error) {
	if v == "Local" {
		return nil, errors.New(`must be an IANA time zone name such as "Europe/London" or "UTC", not "Local"`)
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, errors.New(`must be an IANA time zone name such as "Europe/London" or "UTC"`)
	}
	return loc, nil
}

// checkAdmin checks the admin listener's settings together and fills in the
// default PAYMENTS_ADMIN_PUBLIC_URL: http:// and the admin address, an
// unspecified host (empty, 0.0.0.0, ::) read as 127.0.0.1, the address an
// operator on the node reaches it at.
func checkAdmin(c *config) []error {
	if c.AdminAddr == "" {
		if c.AdminPublicURL != "" {
			return []error{errors.New("PAYMENTS_ADMIN_PUBLIC_URL: needs PAYMENTS_ADMIN_ADDR (without it the back office is on PAYMENTS_PUBLIC_URL)")}
		}
		return nil
	}
	var errs []error
	if c.AdminAddr == c.Addr {
		errs = append(errs, errors.New("PAYMENTS_ADMIN_ADDR: must differ from PAYMENTS_ADDR"))
	}
	if c.AdminAddr == c.DebugPprofAddr {
		errs = append(errs, errors.New("PAYMENTS_DEBUG_PPROF_ADDR: must differ from PAYMENTS_ADMIN_ADDR, which serves the profiles itself"))
	}
	if c.AdminPublicURL == "" {
		u, err := defaultAdminURL(c.AdminAddr)
		if err != nil {
			return append(errs, err)
		}
		c.AdminPublicURL = u
	}
	if strings.TrimSuffix(c.AdminPublicURL, "/") == strings.TrimSuffix(c.PublicURL, "/") {
		errs = append(errs, errors.New("PAYMENTS_ADMIN_PUBLIC_URL: must differ from PAYMENTS_PUBLIC_URL, so that a back office proof is good on the admin listener only"))
	}
	return errs
}

// defaultAdminURL is the admin listener's URL when PAYMENTS_ADMIN_PUBLIC_URL
// is unset; a port that is not a number (a service name, or 0 for any free
// port) cannot make one.
func defaultAdminURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("PAYMENTS_ADMIN_ADDR: must be host:port such as 127.0.0.1:9090")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", errors.New("PAYMENTS_ADMIN_PUBLIC_URL: required when PAYMENTS_ADMIN_ADDR's port is not a number from 1 to 65535")
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}
