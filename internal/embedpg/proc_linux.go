package embedpg

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// setParentDeathSignal has the kernel send sig to the child when the
// thread that started it ends (see Server.launch), so a caller that dies
// without Stop does not leave its server running.
func setParentDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) {
	attr.Pdeathsig = sig
}

// servesDir reports whether process pid is a server of the cluster in
// pgdata: a postmaster works in its data directory.
func servesDir(pid int, pgdata string) answer {
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return unknown
	}
	want, err := filepath.EvalSymlinks(pgdata)
	if err != nil {
		return unknown
	}
	if cwd == want {
		return yes
	}
	return no
}
