package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/obpay/payments/internal/security"
)

// maxKeyFile bounds the private key file read at start: a PKCS#8 PEM key of
// the supported types is a few KiB at most.
const maxKeyFile = 64 << 10

// checkAuthMethod accepts the introspection client authentication methods
// (PAYMENTS_INTROSPECTION_AUTH_METHOD).
func checkAuthMethod(v string) error {
	switch v {
	case security.AuthClientSecretBasic, security.AuthClientSecretPost, security.AuthPrivateKeyJWT:
		return nil
	}
	return fmt.Errorf("must be %s, %s or %s", security.AuthClientSecretBasic, security.AuthClientSecretPost, security.AuthPrivateKeyJWT)
}

// checkPrivateKeyJWT validates what private_key_jwt needs once every setting
// is parsed, and loads the key into c. Each error names its variable.
func checkPrivateKeyJWT(c *config) []error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("PAYMENTS_ISSUER: required with PAYMENTS_INTROSPECTION_AUTH_METHOD=private_key_jwt (the aud of the client assertions)"))
	}
	if c.IntrospectionClientID == "" {
		errs = append(errs, errors.New("PAYMENTS_INTROSPECTION_CLIENT_ID: required with PAYMENTS_INTROSPECTION_AUTH_METHOD=private_key_jwt"))
	}
	if c.IntrospectionKeyFile == "" {
		return append(errs, errors.New("PAYMENTS_INTROSPECTION_PRIVATE_KEY: required with PAYMENTS_INTROSPECTION_AUTH_METHOD=private_key_jwt"))
	}
	key, mode, err := loadPrivateKey(c.IntrospectionKeyFile)
	if err != nil {
		return append(errs, fmt.Errorf("PAYMENTS_INTROSPECTION_PRIVATE_KEY=%s: %w", shownValue(c.IntrospectionKeyFile), err))
	}
	c.IntrospectionKey, c.IntrospectionKeyMode = key, mode
	return errs
}

// loadPrivateKey reads an unencrypted PKCS#8 PEM private key ("PRIVATE
// KEY", RFC 5958 §2, RFC 7468 §10) of a type the client assertions can use
// (security.ClientAssertionAlg), and returns it with the file's permission
// bits. Its errors never quote the file's contents.
func loadPrivateKey(path string) (crypto.Signer, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, errors.New("must be a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read: %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, 0, errors.New("too large for a private key")
	}
	block, _ := pem.Decode(b)
	switch {
	case block == nil:
		return nil, 0, errors.New(`not a PEM file; want a PKCS#8 "PRIVATE KEY"`)
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return nil, 0, errors.New("the key is encrypted; store it unencrypted, readable only by the service (chmod 600)")
	case block.Type != "PRIVATE KEY":
		return nil, 0, fmt.Errorf(`holds a %q, not a PKCS#8 "PRIVATE KEY"; convert it with: openssl pkcs8 -topk8 -nocrypt -in old.pem -out key.pem`, block.Type)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, 0, errors.New(`not a valid PKCS#8 "PRIVATE KEY"`)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, 0, fmt.Errorf("unsupported key type %T (want EC P-256, RSA of at least 2048 bits or Ed25519)", parsed)
	}
	if _, err := security.ClientAssertionAlg(key); err != nil {
		return nil, 0, fmt.Errorf("unsupported key (want EC P-256, RSA of at least 2048 bits or Ed25519): %v", err)
	}
	return key, fi.Mode().Perm(), nil
}

// Warnings warnIntrospectionAuth logs.
const (
	msgSecretIgnored = "PAYMENTS_INTROSPECTION_CLIENT_SECRET is set but not used: PAYMENTS_INTROSPECTION_AUTH_METHOD=private_key_jwt " +
		"authenticates with PAYMENTS_INTROSPECTION_PRIVATE_KEY; unset the secret"
	msgKeyFileReadable = "PAYMENTS_INTROSPECTION_PRIVATE_KEY is readable by group or others: restrict it to the service's user"
)

// warnIntrospectionAuth logs a WARN for a client secret that private_key_jwt
// ignores, and, as an SSH client does, for a private key file that group or
// others may read (mode & 0o077), naming the file and the fix. It never logs
// the secret or the key.
func warnIntrospectionAuth(ctx context.Context, c config, log *slog.Logger) {
	if c.IntrospectionAuthMethod != security.AuthPrivateKeyJWT {
		return
	}
	if c.IntrospectionSecret != "" {
		log.WarnContext(ctx, msgSecretIgnored)
	}
	if c.IntrospectionKey != nil && c.IntrospectionKeyMode&0o077 != 0 {
		log.WarnContext(ctx, msgKeyFileReadable, "file", c.IntrospectionKeyFile,
			"mode", fmt.Sprintf("%04o", uint32(c.IntrospectionKeyMode)), "fix", "chmod 600 "+c.IntrospectionKeyFile)
	}
}

// withClientAuth returns ic with the introspection client authentication of
// c: the method, and the secret or the key, kid and audience it needs. A
// secret configured with private_key_jwt is not passed on (it is ignored,
// with the warning of warnIntrospectionAuth).
func withClientAuth(c config, ic security.IntrospectionConfig) security.IntrospectionConfig {
	ic.AuthMethod = c.IntrospectionAuthMethod
	ic.ClientSecret = c.IntrospectionSecret
	if c.IntrospectionAuthMethod == security.AuthPrivateKeyJWT {
		ic.ClientSecret = ""
		ic.PrivateKey, ic.KeyID, ic.AssertionAudience = c.IntrospectionKey, c.IntrospectionKeyID, c.Issuer
	}
	return ic
}
