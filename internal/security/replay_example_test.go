package security_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/obpay/payments/internal/security"
)

// One busy proof key records until the store is under pressure (a shard at
// its high-water mark, 8 of its 10 entries) and is refused there; another key
// still gets in.
func ExampleMemoryReplayStore_SeenFor() {
	now := time.Unix(1_800_000_000, 0)
	store, err := security.NewMemoryReplayStore(security.WithMaxEntries(640), security.WithReplayClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	until := now.Add(71 * time.Second)
	for i := 0; ; i++ {
		_, err := store.SeenFor(ctx, "jkt-busy", fmt.Sprint("busy-proof-", i), until)
		if err != nil {
			fmt.Println("busy key:", errors.Is(err, security.ErrReplayShareExceeded))
			break
		}
	}
	seen, err := store.SeenFor(ctx, "jkt-other", "other-proof", until)
	fmt.Println("other key:", seen, err)
	// Output:
	// busy key: true
	// other key: false <nil>
}
