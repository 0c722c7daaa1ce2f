//go:build unix && !linux

package embedpg

import "syscall"

// setParentDeathSignal does nothing where the system has no parent-death
// signal: a server whose caller was killed keeps running until the next
// Start stops it.
func setParentDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

// servesDir cannot tell without /proc.
func servesDir(int, string) answer { return unknown }
