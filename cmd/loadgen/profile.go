package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profiler collects a CPU and an allocation profile from the payments
// process's debug pprof listener (PAYMENTS_DEBUG_PPROF_ADDR) while a window
// runs.
type profiler struct {
	addr string // host:port of the debug listener
	dir  string // where the .pprof files go
}

// during starts both profiles for d and returns a function that waits for
// them and writes <name>.cpu.pprof and <name>.allocs.pprof. The allocation
// profile is a delta over the same d (the allocs endpoint's seconds
// parameter), so it shows what the window allocated.
func (p *profiler) during(ctx context.Context, name string, d time.Duration) func() error {
	secs := int(d.Seconds())
	if secs < 1 {
		secs = 1
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, kind := range []string{"profile", "allocs"} {
		file := filepath.Join(p.dir, name+".cpu.pprof")
		if kind == "allocs" {
			file = filepath.Join(p.dir, name+".allocs.pprof")
		}
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", p.addr, kind, secs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fetch(ctx, url, file)
		}()
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 500))
		return fmt.Errorf("profile %s: HTTP %d: %s", url, res.StatusCode, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
