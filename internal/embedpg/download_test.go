//go:build unix

package embedpg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

type entry struct {
	name, body string
	mode       int64
	kind       byte
}

// archiveOf builds a gzip'd tar of entries.
func archiveOf(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: e.kind}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
			h.Linkname = e.body
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// buildOf is an archive in the published layout whose programs run the
// machine's own PostgreSQL, so what Fetch unpacks can really start.
func buildOf(t *testing.T, local string) []byte {
	return archiveOf(t, []entry{
		{name: "package/package.json", body: "{}", mode: 0o644},
		{name: "package/native/bin/initdb", body: "#!/bin/sh\nexec " + filepath.Join(local, "initdb") + " \"$@\"\n", mode: 0o755},
		{name: "package/native/bin/postgres", body: "#!/bin/sh\nexec " + filepath.Join(local, "postgres") + " \"$@\"\n", mode: 0o755},
		{name: "package/native/lib/libexample.so.1.2", body: "not really a library", mode: 0o644},
		{name: "package/native/pg-symlinks.json", mode: 0o644,
			body: `[{"source":"native/lib/libexample.so.1.2","target":"native/lib/libexample.so.1"}]`},
	})
}

func digest(b []byte) string {
	sum := sha512.Sum512(b)
	return hex.EncodeToString(sum[:])
}

// serve serves body at /pg.tgz and counts the requests.
func serve(t *testing.T, body []byte) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pg.tgz" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/pg.tgz", &hits
}

func TestFetchedBuildRuns(t *testing.T) {
	local := localBinaries(t)
	body := buildOf(t, local)
	url, hits := serve(t, body)
	cache := filepath.Join(reachableDir(t), "cache")
	a := Archive{Version: "test", URL: url, SHA512: digest(body)}

	bin, err := Fetch(context.Background(), a, cache, nil, nil)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !strings.HasPrefix(bin, cache) {
		t.Fatalf("binaries at %s, outside the cache %s", bin, cache)
	}
	link, err := os.Readlink(filepath.Join(bin, "..", "lib", "libexample.so.1"))
	if err != nil || link != "libexample.so.1.2" {
		t.Fatalf("library link: %q, %v", link, err)
	}
	if _, err := os.Stat(filepath.Join(bin, "..", "package.json")); !os.IsNotExist(err) {
		t.Fatalf("files outside package/native/ were unpacked: %v", err)
	}

	cfg := testConfig(t, bin)
	s := start(t, cfg)
	if got := exec1(t, s.URL("postgres"), "SELECT 'from the download'"); got != "from the download" {
		t.Fatal(got)
	}

	// Cached: a second fetch does not download again.
	again, err := Fetch(context.Background(), a, cache, nil, nil)
	if err != nil || again != bin {
		t.Fatalf("second Fetch: %s, %v", again, err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("downloaded %d times, want once", n)
	}
}

func TestFetchRefusesDigestMismatch(t *testing.T) {
	body := archiveOf(t, []entry{{name: "package/native/bin/initdb", body: "#!/bin/sh\n", mode: 0o755}})
	url, _ := serve(t, body)
	cache := filepath.Join(t.TempDir(), "cache")
	wrong := digest([]byte("another archive"))
	_, err := Fetch(context.Background(), Archive{Version: "test", URL: url, SHA512: wrong}, cache, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "SHA-512 digest mismatch") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Fetch of an archive with another digest: %v", err)
	}
	left, _ := os.ReadDir(cache)
	for _, e := range left {
		if e.Name() != ".lock" {
			t.Errorf("a refused download left %s in the cache", e.Name())
		}
	}
}

func TestFetchRefusesHostileArchives(t *testing.T) {
	cases := map[string][]entry{
		"path leaving the directory": {{name: "package/native/../../../escape", body: "x", mode: 0o644}},
		"symbolic link entry":        {{name: "package/native/bin/initdb", body: "/bin/sh", kind: tar.TypeSymlink}},
		"hard link entry":            {{name: "package/native/bin/initdb", body: "package/native/x", kind: tar.TypeLink}},
		"link list leaving a directory": {
			{name: "package/native/pg-symlinks.json", mode: 0o644, body: `[{"source":"native/lib/a","target":"native/bin/postgres"}]`},
		},
		"link list escaping": {
			{name: "package/native/pg-symlinks.json", mode: 0o644, body: `[{"source":"native/../../etc/passwd","target":"native/passwd"}]`},
		},
		"no programs": {{name: "package/native/README", body: "x", mode: 0o644}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			body := archiveOf(t, entries)
			url, _ := serve(t, body)
			root := t.TempDir()
			_, err := Fetch(context.Background(), Archive{Version: "test", URL: url, SHA512: digest(body)}, filepath.Join(root, "cache"), nil, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if _, err := os.Stat(filepath.Join(root, "escape")); !os.IsNotExist(err) {
				t.Fatal("an entry was written outside the cache")
			}
		})
	}
}

func TestFetchReportsHTTPFailure(t *testing.T) {
	url, _ := serve(t, nil)
	_, err := Fetch(context.Background(), Archive{Version: "test", URL: url + ".missing", SHA512: digest(nil)}, t.TempDir(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Fetch of a missing file: %v", err)
	}
}

func TestPinnedArchivesAreComplete(t *testing.T) {
	for platform, a := range pinned {
		if len(a.SHA512) != 128 || a.Version == "" || !strings.HasPrefix(a.URL, "https://") {
			t.Errorf("%s: incomplete pin %+v", platform, a)
		}
		if _, err := hex.DecodeString(a.SHA512); err != nil {
			t.Errorf("%s: digest is not hex", platform)
		}
	}
}

// TestPinnedDownloadRuns downloads this platform's pinned build from its
// real address and starts it. It needs the network, so it runs only when
// EMBEDPG_REAL_DOWNLOAD=1 (before changing a pin).
func TestPinnedDownloadRuns(t *testing.T) {
	if os.Getenv("EMBEDPG_REAL_DOWNLOAD") != "1" {
		t.Skip("set EMBEDPG_REAL_DOWNLOAD=1 to download the pinned build")
	}
	a, ok := Pinned()
	if !ok {
		t.Skip("no pinned build for this platform")
	}
	bin, err := Fetch(context.Background(), a, filepath.Join(reachableDir(t), "cache"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, testConfig(t, bin))
	if got := exec1(t, s.URL("postgres"), "SELECT current_setting('server_version')"); !strings.HasPrefix(got, a.Version) {
		t.Fatalf("server_version %q, pinned %s", got, a.Version)
	}
}
