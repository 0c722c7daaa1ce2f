// Command payments runs the Open Banking payment API service: the DPoP-protected
// PISP and AISP API over a double-entry ledger in PostgreSQL, and, when enabled,
// the sandbox authorization server.
//
// Usage:
//
//	payments serve            run the HTTP service
//	payments migrate up       apply pending database migrations
//	payments migrate status   list migrations and whether each is applied
//	payments version          print the version
//	payments --help           list commands and every environment variable
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// errUsage marks a command line that is wrong; run prints usage for it.
var errUsage = errors.New("usage")

// run executes one command and returns the process exit code. ctx is
// cancelled on SIGINT/SIGTERM. hooks is nil outside tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hooks *serveHooks) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "payments", buildVersion())
		return 0
	case "serve":
		err = serveCommand(ctx, args[1:], getenv, stdout, stderr, hooks)
	case "migrate":
		err = migrateCommand(ctx, args[1:], getenv, stdout, stderr)
	case "dpop":
		err = dpopCommand(ctx, args[1:], stdout, stderr)
	case "sandbox":
		err = sandboxCommand(ctx, args[1:], getenv, stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "payments:", err)
		usage(stderr)
		return 2
	default:
		fmt.Fprintln(stderr, "payments:", err)
		return 1
	}
}

// errHelp means a command printed its help on request.
var errHelp = errors.New("help requested")

func usage(w io.Writer) {
	fmt.Fprint(w, `payments: the Open Banking payment API service (DPoP-protected PISP/AISP over a Postgres ledger)

Commands:
  serve            run the HTTP service (applies migrations unless PAYMENTS_MIGRATE=false)
  migrate up       apply pending database migrations to DATABASE_URL
  migrate status   list the migrations and whether each is applied
  version          print the version
  dpop keygen      print a new DPoP private key (--alg ES256|EdDSA|PS256, --format jwk|pem)
  dpop proof       print one DPoP proof for curl (--key FILE --method M --url URL [--token T] [--nonce N])
  dpop thumbprint  print a DPoP key's RFC 7638 thumbprint (--key FILE)
  sandbox pay      run a whole sandbox payment through the Go SDK and print each step (--url URL [--admin-url URL] [--amount A] [--version 3.1|4.0])
  help, --help     this text

Configuration comes from the environment only:

`)
	printSettings(w)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
}

// wantsHelp reports whether a sub-command's arguments ask for help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "help" {
			return true
		}
	}
	return false
}
