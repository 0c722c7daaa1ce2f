package main

import (
	"net"
	"net/http"
	"sync"
)

// connTracker remembers the connections that have not started a request yet
// (http.StateNew). http.Server.Shutdown treats such a connection as busy for
// its first five seconds, so a client that opened a spare connection and never
// used it would hold up a shutdown; closing them is safe because no request
// has been read from them.
type connTracker struct {
	mu    sync.Mutex
	fresh map[net.Conn]struct{}
}

func newConnTracker() *connTracker {
	return &connTracker{fresh: map[net.Conn]struct{}{}}
}

// track is the http.Server.ConnState hook.
func (t *connTracker) track(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s == http.StateNew {
		t.fresh[c] = struct{}{}
	} else {
		delete(t.fresh, c)
	}
}

// closeFresh closes every connection that has not started a request.
func (t *connTracker) closeFresh() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.fresh {
		_ = c.Close()
		delete(t.fresh, c)
	}
}
