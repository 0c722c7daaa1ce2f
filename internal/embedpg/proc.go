//go:build unix

package embedpg

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// answer is yes, no, or "cannot tell".
type answer int

const (
	unknown answer = iota
	yes
	no
)

// processAlive reports whether a process with this pid exists (one of
// another user counts).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// stopPid asks a server that is not our child to shut down (fast), then
// immediately, and waits for it to be gone.
func stopPid(pid int, grace time.Duration) error {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
		_ = syscall.Kill(pid, sig)
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) {
			if !processAlive(pid) {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		grace = 10 * time.Second
	}
	return fmt.Errorf("process %d did not stop", pid)
}
