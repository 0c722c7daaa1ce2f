// Package coalesce lets concurrent keyed lookups share round trips: a
// Batcher collects the lookups that arrive while earlier batches are running
// and answers all of them with one call of a batch fetch function.
//
// # Freshness
//
// Nothing is cached. Every lookup is answered by a fetch that started after
// the lookup was enqueued: a batch is cut from the queue only when it is about
// to run, and a lookup never joins a batch that is already running. A reader
// therefore never sees data older than its own arrival, exactly as if it had
// run its own query.
//
// # Scheduling
//
// At most Options.MaxInFlight batches run at once. A lookup that finds a free
// slot runs at once in the calling goroutine (no added wait at low load);
// otherwise it waits in the queue. When a batch ends and lookups are queued,
// the next batch (up to Options.MaxBatch of the oldest lookups) starts in a
// goroutine of the Batcher, so a caller's goroutine is never kept serving
// others after it has its own answer.
package coalesce

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxInFlight = 2
	DefaultMaxBatch    = 64
	DefaultTimeout     = 5 * time.Second
)

// Options configures New. Zero or negative values mean the defaults.
type Options struct {
	// MaxInFlight is the number of batches that may run at once.
	MaxInFlight int
	// MaxBatch is the largest number of keys passed to one fetch.
	MaxBatch int
	// Timeout bounds one fetch. A fetch does not run under the context of any
	// one caller (a cancelled caller must not fail the others in its batch),
	// so this is what ends a fetch that hangs.
	Timeout time.Duration
}

// ResultCountError is the error of every lookup of a batch whose fetch
// returned a number of values other than the number of keys: no value of
// such a fetch can be matched to its key with certainty.
type ResultCountError struct {
	Keys, Values int
}

func (e *ResultCountError) Error() string {
	return fmt.Sprintf("coalesce: fetch returned %d values for %d keys", e.Values, e.Keys)
}

// PanicError is the error of every lookup of a batch whose fetch panicked.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("coalesce: fetch panicked: %v", e.Value)
}

// Batcher coalesces concurrent lookups of keys K into batched calls of a
// fetch function. It is safe for concurrent use. Keys are not deduplicated:
// a key looked up twice appears twice in a batch.
type Batcher[K, V any] struct {
	fetch func(ctx context.Context, keys []K) ([]V, error)
	opts  Options

	mu      sync.Mutex
	queue   []*lookup[K, V] // waiting for a batch, oldest first
	running int             // batches running
}

// lookup is one Do call.
type lookup[K, V any] struct {
	ctx  context.Context // the caller's; a batch's fetch context derives from its first lookup's
	key  K
	done chan result[V] // buffered: a batch never blocks on a caller that has gone
}

type result[V any] struct {
	val V
	err error
}

// New returns a Batcher that calls fetch for batches of keys. fetch must
// return one value per key, in the keys' order, or an error that then
// answers every lookup of the batch.
func New[K, V any](fetch func(ctx context.Context, keys []K) ([]V, error), opts Options) *Batcher[K, V] {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Batcher[K, V]{fetch: fetch, opts: opts}
}

// Do returns the value fetched for key by a fetch that started after Do was
// called, or that fetch's error. When fewer than MaxInFlight batches are
// running it runs the fetch itself, in the calling goroutine; it then returns
// when the fetch ends even if ctx ends earlier (the fetch's own timeout bounds
// that wait). Otherwise it waits for a batch and returns ctx.Err() as soon as
// ctx ends, leaving its key out of any batch not yet started.
func (b *Batcher[K, V]) Do(ctx context.Context, key K) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, err
	}
	l := &lookup[K, V]{ctx: ctx, key: key, done: make(chan result[V], 1)}
	b.mu.Lock()
	b.queue = append(b.queue, l)
	var batch []*lookup[K, V]
	if b.running < b.opts.MaxInFlight {
		// The queue is empty whenever a slot is free (a batch that ends
		// with lookups queued hands its slot straight to the next batch),
		// so this batch is l alone: no caller waits for others at low load.
		batch = b.cut()
		b.running++
	}
	b.mu.Unlock()

	if batch != nil {
		b.run(ctx, batch)
		if next := b.finish(); next != nil {
			go b.serve(next)
		}
		r := <-l.done
		return r.val, r.err
	}
	select {
	case r := <-l.done:
		return r.val, r.err
	case <-ctx.Done():
		b.forget(l)
		var zero V
		return zero, ctx.Err()
	}
}

// cut removes the oldest lookups, at most MaxBatch, from the queue and
// returns them. b.mu must be held.
func (b *Batcher[K, V]) cut() []*lookup[K, V] {
	n := min(len(b.queue), b.opts.MaxBatch)
	batch := make([]*lookup[K, V], n)
	copy(batch, b.queue)
	// Clear the moved slots so that the queue's backing array does not keep
	// answered lookups alive.
	clear(b.queue[:n])
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	return batch
}

// finish is called when a batch has ended: it returns the next batch, keeping
// the ended batch's slot for it, or releases the slot when nothing is queued.
func (b *Batcher[K, V]) finish() []*lookup[K, V] {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.running--
		return nil
	}
	return b.cut()
}

// serve runs batches in a goroutine of the Batcher until the queue is empty.
func (b *Batcher[K, V]) serve(batch []*lookup[K, V]) {
	for batch != nil {
		b.run(batch[0].ctx, batch)
		batch = b.finish()
	}
}

// forget removes l from the queue if no batch has taken it yet.
func (b *Batcher[K, V]) forget(l *lookup[K, V]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, q := range b.queue {
		if q == l {
			b.queue = slices.Delete(b.queue, i, i+1)
			return
		}
	}
}

// run fetches batch and answers each of its lookups. The fetch runs under a
// context with parent's values but not its cancellation, bounded by the
// timeout.
func (b *Batcher[K, V]) run(parent context.Context, batch []*lookup[K, V]) {
	keys := make([]K, len(batch))
	for i, l := range batch {
		keys[i] = l.key
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), b.opts.Timeout)
	defer cancel()
	vals, err := b.call(ctx, keys)
	if err == nil && len(vals) != len(keys) {
		err = &ResultCountError{Keys: len(keys), Values: len(vals)}
	}
	for i, l := range batch {
		if err != nil {
			l.done <- result[V]{err: err}
		} else {
			l.done <- result[V]{val: vals[i]}
		}
	}
}

// call calls fetch, turning a panic into a *PanicError so that the batch's
// lookups are answered and its slot is released.
func (b *Batcher[K, V]) call(ctx context.Context, keys []K) (vals []V, err error) {
	defer func() {
		if v := recover(); v != nil {
			vals, err = nil, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return b.fetch(ctx, keys)
}
