package devauth

import (
	"context"
	"sync"
	"time"
)

// defaultMaxEntries bounds each kind of entry of a memory store.
const defaultMaxEntries = 100_000

// MemoryStore is a Store in memory, for tests and the example: nothing
// survives the process. Besides the per-client caps it holds at most
// 100,000 live entries of each kind (ErrFull past that), and drops expired
// ones as it counts. Each Put is linear in the entries of its kind. It is
// safe for concurrent use.
type MemoryStore struct {
	maxEntries int

	mu            sync.Mutex
	tokens        map[Hash]Grant
	codes         map[Hash]*memCode
	requests      map[Hash]PushedRequest
	registrations map[string]Registration
	assertions    map[string]time.Time
}

type memCode struct {
	Code
	used, revoked bool
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		maxEntries:    defaultMaxEntries,
		tokens:        map[Hash]Grant{},
		codes:         map[Hash]*memCode{},
		requests:      map[Hash]PushedRequest{},
		registrations: map[string]Registration{},
		assertions:    map[string]time.Time{},
	}
}

// PutToken implements Store.
func (m *MemoryStore) PutToken(_ context.Context, g Grant, now time.Time, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g.Family != (Hash{}) {
		if c, ok := m.codes[g.Family]; ok && c.revoked {
			return ErrCodeReused
		}
	}
	if err := admit(m.tokens, now, g.ClientID, max, m.maxEntries, func(t Grant) (time.Time, string, bool) {
		return t.Expires, t.ClientID, t.Kind == g.Kind
	}); err != nil {
		return err
	}
	m.tokens[g.Hash] = g
	return nil
}

// Token implements Store.
func (m *MemoryStore) Token(_ context.Context, kind TokenKind, h Hash, now time.Time) (Grant, error) {
	m.mu.Lock()
	g, ok := m.tokens[h]
	m.mu.Unlock()
	if !ok || g.Kind != kind || !now.Before(g.Expires) {
		return Grant{}, ErrNotFound
	}
	return g, nil
}

// PutCode implements Store.
func (m *MemoryStore) PutCode(_ context.Context, c Code, now time.Time, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := admit(m.codes, now, c.ClientID, max, m.maxEntries, func(e *memCode) (time.Time, string, bool) {
		return e.Expires, e.ClientID, true
	}); err != nil {
		return err
	}
	m.codes[c.Hash] = &memCode{Code: c}
	return nil
}

// DeleteCode implements Store.
func (m *MemoryStore) DeleteCode(_ context.Context, h Hash) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.codes, h)
	return nil
}

// RedeemCode implements Store.
func (m *MemoryStore) RedeemCode(_ context.Context, h Hash, now time.Time) (Code, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[h]
	switch {
	case !ok || !now.Before(c.Expires):
		return Code{}, ErrNotFound
	case c.used:
		c.revoked = true
		for th, g := range m.tokens {
			if g.Family == h {
				delete(m.tokens, th)
			}
		}
		return Code{}, ErrCodeReused
	}
	c.used = true
	return c.Code, nil
}

// PutRequest implements Store.
func (m *MemoryStore) PutRequest(_ context.Context, r PushedRequest, now time.Time, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := admit(m.requests, now, r.ClientID, max, m.maxEntries, func(e PushedRequest) (time.Time, string, bool) {
		return e.Expires, e.ClientID, true
	}); err != nil {
		return err
	}
	m.requests[r.Hash] = r
	return nil
}

// TakeRequest implements Store.
func (m *MemoryStore) TakeRequest(_ context.Context, h Hash, clientID string, now time.Time) (PushedRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[h]
	if !ok || !secretEqual(r.ClientID, clientID) {
		return PushedRequest{}, ErrNotFound
	}
	delete(m.requests, h)
	if !now.Before(r.Expires) {
		return PushedRequest{}, ErrNotFound
	}
	return r, nil
}

// PutRegistration implements Store.
func (m *MemoryStore) PutRegistration(_ context.Context, r Registration, now time.Time, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, e := range m.registrations {
		if !now.Before(e.Expires) {
			delete(m.registrations, id)
		} else {
			n++
		}
	}
	if n >= max {
		return ErrFull
	}
	m.registrations[r.ClientID] = r
	return nil
}

// Registration implements Store.
func (m *MemoryStore) Registration(_ context.Context, clientID string, now time.Time) (Registration, error) {
	m.mu.Lock()
	r, ok := m.registrations[clientID]
	m.mu.Unlock()
	if !ok || !now.Before(r.Expires) {
		return Registration{}, ErrNotFound
	}
	return r, nil
}

// SeenAssertion implements Store.
func (m *MemoryStore) SeenAssertion(_ context.Context, key string, until, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end, ok := m.assertions[key]; ok && now.Before(end) {
		return true, nil
	}
	if len(m.assertions) >= m.maxEntries {
		for k, end := range m.assertions {
			if !now.Before(end) {
				delete(m.assertions, k)
			}
		}
	}
	if len(m.assertions) >= m.maxEntries {
		return false, ErrFull
	}
	m.assertions[key] = until
	return false, nil
}

// Purge implements Store. Used codes are kept until they expire, to
// recognise reuse.
func (m *MemoryStore) Purge(_ context.Context, now time.Time, limit int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	deleted := 0
	purge := func(expired bool, del func()) {
		if expired && deleted < limit {
			del()
			deleted++
		}
	}
	for h, g := range m.tokens {
		purge(!now.Before(g.Expires), func() { delete(m.tokens, h) })
	}
	for h, c := range m.codes {
		purge(!now.Before(c.Expires), func() { delete(m.codes, h) })
	}
	for h, r := range m.requests {
		purge(!now.Before(r.Expires), func() { delete(m.requests, h) })
	}
	for id, r := range m.registrations {
		purge(!now.Before(r.Expires), func() { delete(m.registrations, id) })
	}
	for k, end := range m.assertions {
		purge(!now.Before(end), func() { delete(m.assertions, k) })
	}
	return deleted, nil
}

// sizes returns the number of stored tokens of each kind, codes and
// requests, expired ones included (tests).
func (m *MemoryStore) sizes() (access, refresh, codes, requests, registrations int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range m.tokens {
		if g.Kind == KindAccess {
			access++
		} else {
			refresh++
		}
	}
	return access, refresh, len(m.codes), len(m.requests), len(m.registrations)
}

// admit drops the expired entries of entries and says whether one more entry
// of client fits: ErrClientAtCap when client holds max live entries of the
// kind, ErrFull when all clients together hold limit. describe gives an
// entry's expiry, client and whether it is of the kind being counted.
func admit[V any](entries map[Hash]V, now time.Time, client string, max, limit int, describe func(V) (expires time.Time, clientID string, counted bool)) error {
	n, all := 0, 0
	for h, e := range entries {
		expires, owner, counted := describe(e)
		switch {
		case !now.Before(expires):
			delete(entries, h)
		case counted:
			all++
			if owner == client {
				n++
			}
		}
	}
	switch {
	case n >= max:
		return ErrClientAtCap
	case all >= limit:
		return ErrFull
	}
	return nil
}
