package security

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// Nonce modes (PAYMENTS_DPOP_NONCE).
const (
	NonceRequired = "required"
	NonceOff      = "off"
)

const (
	nonceMACSize = 16 // 128-bit truncated HMAC-SHA-256 tag
	nonceSize    = 8 + nonceMACSize
	nonceLabel   = "payments dpop nonce v1"
)

// nonceIssuer makes and checks stateless server nonces (RFC 9449 §9):
// base64url(window || HMAC(secret, label || window)), where window is the
// number of whole nonce windows since the Unix epoch. Any node holding the same
// secret accepts any node's nonce; the current and the previous window are
// accepted, so a nonce lives between one and two windows.
type nonceIssuer struct {
	off    bool
	secret []byte
	window time.Duration
	// tags caches the tags of the two most recent windows: only the current
	// and the previous window are ever accepted, so checking a nonce
	// normally costs a comparison instead of an HMAC.
	tags atomic.Pointer[[2]windowTag]
}

// windowTag is the tag of one nonce window.
type windowTag struct {
	idx uint64
	tag [nonceMACSize]byte
	set bool
}

func (n *nonceIssuer) index(now time.Time) uint64 {
	return uint64(now.UnixNano() / int64(n.window))
}

// tag returns HMAC-SHA-256(secret, label || idx) truncated to nonceMACSize,
// from the cache when idx is one of the two most recent windows seen.
func (n *nonceIssuer) tag(idx uint64) [nonceMACSize]byte {
	cached := n.tags.Load()
	if cached != nil {
		for _, w := range cached {
			if w.set && w.idx == idx {
				return w.tag
			}
		}
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], idx)
	mac := hmac.New(sha256.New, n.secret)
	mac.Write([]byte(nonceLabel))
	mac.Write(buf[:])
	var sum [sha256.Size]byte
	fresh := windowTag{idx: idx, set: true}
	copy(fresh.tag[:], mac.Sum(sum[:0]))
	// Keep the two newest windows. check computes tags only for the current
	// and the previous window, so the cache never holds anything else for
	// long.
	next := [2]windowTag{fresh}
	if cached != nil {
		for _, w := range cached {
			switch {
			case !w.set || w.idx == idx:
			case w.idx > next[0].idx:
				next[0], next[1] = w, next[0]
			case !next[1].set || w.idx > next[1].idx:
				next[1] = w
			}
		}
	}
	n.tags.Store(&next)
	return fresh.tag
}

// issue returns the nonce of the current window, or "" when nonces are off.
func (n *nonceIssuer) issue(now time.Time) string {
	if n.off {
		return ""
	}
	idx := n.index(now)
	raw := make([]byte, 0, nonceSize)
	raw = binary.BigEndian.AppendUint64(raw, idx)
	tag := n.tag(idx)
	raw = append(raw, tag[:]...)
	return b64.EncodeToString(raw)
}

// check reports whether nonce is one of ours from the current or the previous
// window, and whether it is from the previous one (so a fresh nonce should ride
// on the response, RFC 9449 §8.2).
func (n *nonceIssuer) check(nonce string, now time.Time) (valid, previous bool) {
	if len(nonce) != b64.EncodedLen(nonceSize) {
		return false, false
	}
	raw, err := b64.DecodeString(nonce)
	if err != nil || len(raw) != nonceSize {
		return false, false
	}
	idx := binary.BigEndian.Uint64(raw[:8])
	cur := n.index(now)
	if idx != cur && idx+1 != cur {
		return false, false
	}
	// Constant-time comparison of the secret-derived tag.
	tag := n.tag(idx)
	if !hmac.Equal(raw[8:], tag[:]) {
		return false, false
	}
	return true, idx != cur
}
