//go:build unix

package embedpg

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// account is the unprivileged user a root caller runs the server as.
type account struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

// serverAccount returns nil when the caller is not root (the server runs as
// the caller), else the user PostgreSQL is run as.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var lastErr error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			lastErr = err
			continue
		}
		return accountOf(u)
	}
	return nil, fmt.Errorf("PostgreSQL refuses to run as root and neither a postgres nor a nobody user exists to run it as (%v): "+
		"create a postgres system user, run as a normal user, or set DATABASE_URL to use an external server", lastErr)
}

func accountOf(u *user.User) (*account, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	ids, _ := u.GroupIds()
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(g))
		}
	}
	return a, nil
}

// credential is what the server's processes run with: nil for the caller's
// own user.
func (a *account) credential() *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
}

func (a *account) String() string {
	if a == nil {
		return "the current user"
	}
	return "user " + a.name
}

// own hands path to the account (a no-op for the caller's own user).
func (a *account) own(path string) error {
	if a == nil {
		return nil
	}
	return os.Lchown(path, int(a.uid), int(a.gid))
}

// mayPass reports whether the account may search (pass through) a
// directory with the given owner, group and mode.
func (a *account) mayPass(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return mode&0o100 != 0
	case st.Gid == a.gid || slices.Contains(a.groups, st.Gid):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// unreachable returns the first directory on the way to path (path
// included) that the account may not pass through, or "" when there is
// none. The caller's own user is not checked: the system says so itself.
func (a *account) unreachable(path string) (string, os.FileInfo) {
	if a == nil {
		return "", nil
	}
	var chain []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		chain = append(chain, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		fi, err := os.Stat(chain[i])
		if err != nil {
			return "", nil // does not exist (yet): nothing below it to reach
		}
		if fi.IsDir() && !a.mayPass(fi) {
			return chain[i], fi
		}
	}
	return "", nil
}

// reachError explains that the account cannot reach dir because of block.
func (a *account) reachError(what, dir, block string, fi os.FileInfo) error {
	owner := "?"
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = strconv.FormatUint(uint64(st.Uid), 10)
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
	}
	return fmt.Errorf("%s %s: PostgreSQL refuses to run as root, so it runs as %s, which cannot reach %s "+
		"(mode %04o, owner %s). Choose a directory that user can reach (e.g. /var/lib/payments), "+
		"allow it to pass with `chmod o+x %s`, or set DATABASE_URL to use an external PostgreSQL",
		what, dir, a, block, fi.Mode().Perm(), owner, block)
}
