package main

import "syscall"

// setParentDeathSignal stops the child when testenv dies without cleaning up.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGTERM }
