package coalesce

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// gated is a fetch whose batches the test starts and ends: each call reports
// its keys on started and then waits for a value on release, which says how
// it ends. Without an override a batch answers key*10 for each key.
type gated struct {
	started chan []int
	release chan func(ctx context.Context, keys []int) ([]int, error)
}

func newGated() *gated {
	return &gated{
		started: make(chan []int, 100),
		release: make(chan func(ctx context.Context, keys []int) ([]int, error)),
	}
}

func (g *gated) fetch(ctx context.Context, keys []int) ([]int, error) {
	g.started <- slices.Clone(keys)
	if f := <-g.release; f != nil {
		return f(ctx, keys)
	}
	return times10(keys), nil
}

func times10(keys []int) []int {
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = k * 10
	}
	return out
}

// batch waits for the next batch to start and returns its keys, sorted.
func (g *gated) batch(t *testing.T) []int {
	t.Helper()
	select {
	case keys := <-g.started:
		slices.Sort(keys)
		return keys
	case <-time.After(time.Second):
		t.Fatal("no batch started")
		return nil
	}
}

// noBatch checks that no batch has started.
func (g *gated) noBatch(t *testing.T) {
	t.Helper()
	select {
	case keys := <-g.started:
		t.Fatalf("unexpected batch %v", keys)
	default:
	}
}

type answer struct {
	key, val int
	err      error
}

// call runs Do in a goroutine; its answer arrives on the returned channel.
func call(ctx context.Context, b *Batcher[int, int], key int) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		v, err := b.Do(ctx, key)
		ch <- answer{key, v, err}
	}()
	return ch
}

// wantAnswers checks that each call got its key's value (key*10), no error.
func wantAnswers(t *testing.T, chs ...<-chan answer) {
	t.Helper()
	for _, ch := range chs {
		if a := get(t, ch); a.err != nil || a.val != a.key*10 {
			t.Errorf("answer %+v, want %d", a, a.key*10)
		}
	}
}

func get(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(time.Second):
		t.Fatal("no answer")
		return answer{}
	}
}

// waitQueued waits until n lookups are queued.
func waitQueued(t *testing.T, b *Batcher[int, int], n int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		b.mu.Lock()
		q := len(b.queue)
		b.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups queued, want %d", q, n)
		}
		runtime.Gosched()
	}
}

// noLeak fails the test if goroutines started during it outlive it.
func noLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines, %d before the test", runtime.NumGoroutine(), before)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

func TestSingleCallerRunsAtOnceInItsGoroutine(t *testing.T) {
	noLeak(t)
	var batches [][]int
	b := New(func(ctx context.Context, keys []int) ([]int, error) {
		batches = append(batches, slices.Clone(keys))
		// The fetch runs on the caller's stack: no hand-over, no wait.
		if !strings.Contains(string(debug.Stack()), "TestSingleCallerRunsAtOnceInItsGoroutine") {
			t.Error("fetch does not run in the calling goroutine")
		}
		return times10(keys), nil
	}, Options{})
	for k := range 3 {
		v, err := b.Do(context.Background(), k)
		if err != nil || v != k*10 {
			t.Fatalf("Do(%d) = %d, %v, want %d", k, v, err, k*10)
		}
	}
	if want := [][]int{{0}, {1}, {2}}; !slices.EqualFunc(batches, want, slices.Equal) {
		t.Errorf("batches %v, want %v", batches, want)
	}
}

func TestResultsMatchKeys(t *testing.T) {
	noLeak(t)
	b := New(func(ctx context.Context, keys []int) ([]int, error) {
		return times10(keys), nil
	}, Options{MaxInFlight: 1, MaxBatch: 4})
	var wg sync.WaitGroup
	for k := range 200 {
		wg.Go(func() {
			if v, err := b.Do(context.Background(), k); err != nil || v != k*10 {
				t.Errorf("Do(%d) = %d, %v, want %d", k, v, err, k*10)
			}
		})
	}
	wg.Wait()
}

func TestBusyCallersShareTheNextBatch(t *testing.T) {
	noLeak(t)
	g := newGated()
	b := New(g.fetch, Options{MaxInFlight: 1})
	ctx := context.Background()

	first := call(ctx, b, 0)
	if got := g.batch(t); !slices.Equal(got, []int{0}) {
		t.Fatalf("first batch %v, want [0]", got)
	}
	// Arrivals while the first batch runs wait for the next one.
	const n = 10
	var waiting []<-chan answer
	for k := 1; k <= n; k++ {
		waiting = append(waiting, call(ctx, b, k))
	}
	waitQueued(t, b, n)
	g.noBatch(t)
	g.release <- nil
	if a := get(t, first); a.err != nil || a.val != 0 {
		t.Fatalf("first answer %+v", a)
	}

	// One batch holds exactly the keys enqueued after the first started...
	second := g.batch(t)
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(second, want) {
		t.Fatalf("second batch %v, want %v", second, want)
	}
	// ...and a key enqueued while it runs is not answered by it.
	late := call(ctx, b, 99)
	waitQueued(t, b, 1)
	g.release <- nil
	wantAnswers(t, waiting...)
	if third := g.batch(t); !slices.Equal(third, []int{99}) {
		t.Fatalf("third batch %v, want [99]", third)
	}
	g.release <- nil
	if a := get(t, late); a.err != nil || a.val != 990 {
		t.Errorf("late answer %+v", a)
	}
	g.noBatch(t)
}

func TestMaxInFlightBatchesRunAtOnce(t *testing.T) {
	noLeak(t)
	g := newGated()
	b := New(g.fetch, Options{MaxInFlight: 2})
	ctx := context.Background()
	a, c := call(ctx, b, 1), call(ctx, b, 2)
	got := append(g.batch(t), g.batch(t)...)
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("batches hold %v, want two batches of one", got)
	}
	waiter := call(ctx, b, 3)
	waitQueued(t, b, 1)
	g.noBatch(t)
	g.release <- nil
	if got := g.batch(t); !slices.Equal(got, []int{3}) {
		t.Fatalf("third batch %v, want [3]", got)
	}
	g.release <- nil
	g.release <- nil
	wantAnswers(t, a, c, waiter)
}

func TestMaxBatch(t *testing.T) {
	noLeak(t)
	g := newGated()
	b := New(g.fetch, Options{MaxInFlight: 1, MaxBatch: 3})
	ctx := context.Background()
	first := call(ctx, b, 0)
	g.batch(t)
	var waiting []<-chan answer
	for k := 1; k <= 7; k++ {
		waiting = append(waiting, call(ctx, b, k))
	}
	waitQueued(t, b, 7)
	g.release <- nil
	var sizes []int
	for range 3 {
		sizes = append(sizes, len(g.batch(t)))
		g.release <- nil
	}
	if want := []int{3, 3, 1}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	wantAnswers(t, append(waiting, first)...)
	g.noBatch(t)
}

func TestCancelledWaiterLeavesAtOnce(t *testing.T) {
	noLeak(t)
	g := newGated()
	b := New(g.fetch, Options{MaxInFlight: 1})
	first := call(context.Background(), b, 0)
	g.batch(t)
	ctx, cancel := context.WithCancel(context.Background())
	waiter := call(ctx, b, 1)
	waitQueued(t, b, 1)
	cancel()
	if a := get(t, waiter); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("cancelled waiter = %+v, want context.Canceled", a)
	}
	waitQueued(t, b, 0) // its key is never fetched
	g.release <- nil
	get(t, first)
	g.noBatch(t)

	// A lookup whose context has already ended does not run.
	if _, err := b.Do(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with an ended context = %v", err)
	}
	g.noBatch(t)
}

type ctxKey struct{}

func TestCancelledCallerDoesNotFailItsBatch(t *testing.T) {
	noLeak(t)
	g := newGated()
	b := New(g.fetch, Options{MaxInFlight: 1})
	// The fetch fails if its context ends, and checks that it carries the
	// values of the context it derives from.
	checkCtx := func(want string) func(ctx context.Context, keys []int) ([]int, error) {
		return func(ctx context.Context, keys []int) ([]int, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if got, _ := ctx.Value(ctxKey{}).(string); got != want {
				return nil, fmt.Errorf("fetch context value %q, want %q", got, want)
			}
			return times10(keys), nil
		}
	}

	leaderCtx, cancelLeader := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "leader"))
	leader := call(leaderCtx, b, 0)
	g.batch(t)
	waiterCtx, cancelWaiter := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "waiter"))
	w1 := call(waiterCtx, b, 1)
	waitQueued(t, b, 1)
	w2 := call(context.Background(), b, 2)
	waitQueued(t, b, 2)

	// The leader's request is cancelled while its fetch runs: the fetch
	// goes on, and the leader, which runs it, still gets its answer.
	cancelLeader()
	g.release <- checkCtx("leader")
	if a := get(t, leader); a.err != nil || a.val != 0 {
		t.Errorf("cancelled leader = %+v, want its value", a)
	}

	// The batch of the waiters runs under the first one's context; that
	// waiter is cancelled while the batch runs: it leaves, the other is
	// answered.
	if got := g.batch(t); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("second batch %v", got)
	}
	cancelWaiter()
	if a := get(t, w1); !errors.Is(a.err, context.Canceled) {
		t.Errorf("cancelled waiter = %+v, want context.Canceled", a)
	}
	g.release <- checkCtx("waiter")
	if a := get(t, w2); a.err != nil || a.val != 20 {
		t.Errorf("other waiter = %+v, want 20", a)
	}
}

func TestBatchFailuresAnswerEveryLookup(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		fetch func(ctx context.Context, keys []int) ([]int, error)
		check func(error) bool
	}{
		{"error", func(context.Context, []int) ([]int, error) { return nil, boom },
			func(err error) bool { return errors.Is(err, boom) }},
		{"too few values", func(_ context.Context, keys []int) ([]int, error) { return times10(keys)[1:], nil },
			func(err error) bool {
				var rc *ResultCountError
				return errors.As(err, &rc) && rc.Values == rc.Keys-1
			}},
		{"too many values", func(_ context.Context, keys []int) ([]int, error) { return append(times10(keys), 0), nil },
			func(err error) bool { var rc *ResultCountError; return errors.As(err, &rc) }},
		{"panic", func(context.Context, []int) ([]int, error) { panic(boom) },
			func(err error) bool {
				var p *PanicError
				return errors.As(err, &p) && p.Value == boom && len(p.Stack) > 0
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noLeak(t)
			g := newGated()
			b := New(g.fetch, Options{MaxInFlight: 1})
			ctx := context.Background()
			first := call(ctx, b, 0)
			g.batch(t)
			var waiting []<-chan answer
			for k := 1; k <= 3; k++ {
				waiting = append(waiting, call(ctx, b, k))
			}
			waitQueued(t, b, 3)
			g.release <- nil
			get(t, first)
			g.batch(t)
			g.release <- tc.fetch
			for _, ch := range waiting {
				if a := get(t, ch); !tc.check(a.err) || a.val != 0 {
					t.Errorf("answer %+v", a)
				}
			}
			// The slot is released: a later lookup is served.
			next := call(ctx, b, 4)
			if got := g.batch(t); !slices.Equal(got, []int{4}) {
				t.Fatalf("next batch %v", got)
			}
			g.release <- tc.fetch
			if a := get(t, next); !tc.check(a.err) {
				t.Errorf("leader answer %+v", a)
			}
			// The count of running batches is right again (the batch that
			// answered last releases its slot just after answering).
			deadline := time.Now().Add(time.Second)
			for {
				b.mu.Lock()
				running := b.running
				b.mu.Unlock()
				if running == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d batches running after all answers", running)
				}
				runtime.Gosched()
			}
		})
	}
}

func BenchmarkDo(b *testing.B) {
	bt := New(func(ctx context.Context, keys []int) ([]int, error) {
		return times10(keys), nil
	}, Options{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bt.Do(context.Background(), 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
