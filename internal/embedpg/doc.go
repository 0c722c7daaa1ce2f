// Package embedpg runs a private PostgreSQL server for development,
// evaluation and tests, so the service needs no database installed by hand.
//
// A server lives in one data directory: the cluster (postgres/), the
// directory of its Unix socket (run/) and a lock file that keeps a second
// process out. It listens on its socket only (and on a loopback port when
// asked), trusts local connections, and runs as a child of the calling
// process: Stop shuts it down cleanly, and on Linux it is asked to shut down
// when the caller dies without calling Stop. A server left running by a
// caller that was killed is found and stopped by the next Start.
//
// PostgreSQL refuses to run as root. A root caller runs it as an
// unprivileged system user ("postgres" if there is one, else "nobody"),
// which must be able to reach the data directory; Start says so, naming the
// directory and the fix, when it cannot.
//
// The binaries (initdb, postgres) come from a directory the caller names, a
// local installation (FindLocal), or a pinned archive downloaded once and
// verified by its SHA-512 digest (Fetch).
//
// This is not how a production database is run: production points the
// service at its own PostgreSQL.
package embedpg
