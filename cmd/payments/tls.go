package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// tlsCipherSuites are the TLS 1.2 suites the FAPI 2.0 Security Profile
// permits (those RFC 9325 §4.2 recommends: ECDHE with AES-GCM). TLS 1.3's
// suites are all AEAD and are not configurable.
var tlsCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}

// certReloader serves the certificate of a certificate and key file pair
// and loads them again on SIGHUP or when either file changes; a pair that
// does not load keeps the previous certificate in service (and is logged).
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.RWMutex
	cert  *tls.Certificate
	stamp string // the files' sizes and modification times when loaded
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// stampOf describes the files' current state, "" when one cannot be read.
func (r *certReloader) stampOf() string {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return ""
		}
		s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s
}

func (r *certReloader) load() error {
	stamp := r.stampOf()
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("PAYMENTS_TLS_CERT_FILE / PAYMENTS_TLS_KEY_FILE: %w", err)
	}
	r.mu.Lock()
	r.cert, r.stamp = &cert, stamp
	r.mu.Unlock()
	return nil
}

// reload loads the pair again, keeping the current certificate when it
// fails.
func (r *certReloader) reload(why string) {
	if err := r.load(); err != nil {
		r.log.Warn("TLS certificate not reloaded; the previous one stays in service", "reason", why, "err", err)
		return
	}
	r.log.Info("TLS certificate reloaded", "reason", why, "cert_file", r.certFile)
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.cert == nil {
		return nil, errors.New("no certificate")
	}
	return r.cert, nil
}

// watch reloads on SIGHUP and when the files change (looked at every
// poll), until ctx ends.
func (r *certReloader) watch(ctx context.Context, poll time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		case <-tick.C:
			r.mu.RLock()
			old := r.stamp
			r.mu.RUnlock()
			if now := r.stampOf(); now != "" && now != old {
				r.reload("file changed")
			}
		}
	}
}

// tlsConfig is the server side of TLS: 1.2 or later, FAPI 2.0's suites for
// 1.2, the reloader's certificate.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   tlsCipherSuites,
		GetCertificate: r.getCertificate,
	}
}
