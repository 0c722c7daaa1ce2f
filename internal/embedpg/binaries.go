//go:build unix

package embedpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FindLocal returns the directory of a PostgreSQL installation on this
// machine that holds initdb and postgres: the one pg_config names, else the
// newest of the usual places (Debian and Ubuntu, a source build, Homebrew,
// Postgres.app), else the PATH. It returns an error that lists where it
// looked when there is none.
func FindLocal() (string, error) {
	var candidates []string
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		cancel()
		if err == nil {
			candidates = append(candidates, strings.TrimSpace(string(out)))
		}
	}
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin",          // Debian, Ubuntu
		"/usr/pgsql-*/bin",                   // PGDG packages on RHEL and Fedora
		"/opt/homebrew/opt/postgresql@*/bin", // Homebrew on Apple silicon
		"/usr/local/opt/postgresql@*/bin",    // Homebrew on Intel
		"/Applications/Postgres.app/Contents/Versions/*/bin",
	} {
		dirs, _ := filepath.Glob(pattern)
		sort.Slice(dirs, func(i, j int) bool { return majorOfPath(dirs[i]) > majorOfPath(dirs[j]) })
		candidates = append(candidates, dirs...)
	}
	candidates = append(candidates, "/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin")
	if initdb, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(initdb))
	}
	for _, d := range candidates {
		if CheckBinaries(d) == nil {
			return d, nil
		}
	}
	return "", errors.New("no local PostgreSQL installation (initdb and postgres) in pg_config --bindir, " +
		"/usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, /usr/local/pgsql/bin, Homebrew's or Postgres.app's directories, or on the PATH")
}

// CheckBinaries says whether dir holds the programs a server needs.
func CheckBinaries(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: no %s there", dir, name)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", p)
		}
	}
	return nil
}

var (
	versionPattern     = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)
	pathVersionPattern = regexp.MustCompile(`(\d+)(?:\.\d+)?/bin$`)
)

// MajorVersion returns the major version of the server in binDir ("15"),
// from `postgres --version`.
func MajorVersion(binDir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", filepath.Join(binDir, "postgres"), err)
	}
	m := versionPattern.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version printed no PostgreSQL version: %q", filepath.Join(binDir, "postgres"), truncate(string(out), 200))
	}
	return string(m[1]), nil
}

// majorOfPath reads the version out of paths such as
// /usr/lib/postgresql/15/bin or /opt/homebrew/opt/postgresql@16/bin.
func majorOfPath(p string) int {
	m := pathVersionPattern.FindStringSubmatch(p)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Resolve returns the directory of the binaries to run: dir when it is
// given, else a local installation, else the pinned build for this
// platform, downloaded into cacheDir once.
func Resolve(ctx context.Context, dir, cacheDir string, client *http.Client, log *slog.Logger) (string, error) {
	if dir != "" {
		return dir, CheckBinaries(dir)
	}
	local, localErr := FindLocal()
	if localErr == nil {
		return local, nil
	}
	a, ok := Pinned()
	if !ok {
		return "", fmt.Errorf("%v, and no PostgreSQL build is pinned for %s/%s to download: install PostgreSQL or set DATABASE_URL",
			localErr, runtime.GOOS, runtime.GOARCH)
	}
	return Fetch(ctx, a, cacheDir, client, log)
}
