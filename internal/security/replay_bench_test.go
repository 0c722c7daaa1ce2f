package security

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"
)

// BenchmarkReplayStore measures the memory store's check-and-record, as the
// verifier calls it (seenFor), in the steady state of one busy client: every call records a new key, the clock
// advances 1/6000 s per call (6,000 proofs/s) and each entry lives 70 s
// (MaxAge + Skew), so about 420,000 entries are live and as many expire as
// are recorded. "keys=1000" spreads the same load over 1,000 proof keys.
func BenchmarkReplayStore(b *testing.B) {
	for _, tc := range []struct {
		name   string
		owners int
	}{{"keys=1", 1}, {"keys=1000", 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			now := testNow
			s, err := NewMemoryReplayStore(WithReplayClock(func() time.Time { return now }))
			if err != nil {
				b.Fatal(err)
			}
			owners := make([]string, tc.owners)
			for i := range owners {
				owners[i] = benchKey(uint64(i) | 1<<63)[:43]
			}
			ctx := context.Background()
			step := time.Second / 6000
			// Reach the steady state before timing: 80 s of traffic.
			i := 0
			for ; i < 80*6000; i++ {
				now = now.Add(step)
				if _, err := seenFor(ctx, s, owners[i%len(owners)], benchKey(uint64(i)), now.Add(70*time.Second)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := range b.N {
				now = now.Add(step)
				dup, err := seenFor(ctx, s, owners[n%len(owners)], benchKey(uint64(i+n)), now.Add(70*time.Second))
				if err != nil || dup {
					b.Fatalf("Seen = %v, %v; want false, nil", dup, err)
				}
			}
		})
	}
}

// benchKey returns a distinct 64-character key for i, shaped like replayKey's.
func benchKey(i uint64) string {
	var raw [32]byte
	binary.BigEndian.PutUint64(raw[:8], i*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(raw[24:], i)
	return hex.EncodeToString(raw[:])
}
