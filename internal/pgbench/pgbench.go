// Package pgbench runs PostgreSQL's pgbench against a database on a server
// given by a postgres:// URL, reads the throughput it reports, and creates
// and drops the scratch databases it runs in.
//
// The benchmark commands use it to measure the same server with pgbench's
// built-in scripts, as a reference for their own figures.
package pgbench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// Run runs program (pgbench) with args against database on the server of
// serverURL and returns its standard output. The host, port and user come
// from serverURL as -h, -p and -U; its password, if any, is passed in
// PGPASSWORD. The database name is the last argument. When pgbench fails,
// the error names args and includes what pgbench wrote to standard error.
func Run(ctx context.Context, program, serverURL, database string, args ...string) (string, error) {
	cmd, err := command(ctx, program, serverURL, database, args)
	if err != nil {
		return "", err
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pgbench %s: %w\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// command builds the pgbench command Run runs.
func command(ctx context.Context, program, serverURL, database string, args []string) (*exec.Cmd, error) {
	server, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	full := []string{"-h", server.Hostname(), "-U", server.User.Username()}
	if p := server.Port(); p != "" {
		full = append(full, "-p", p)
	}
	full = append(full, args...)
	full = append(full, database)
	cmd := exec.CommandContext(ctx, program, full...)
	cmd.Env = os.Environ()
	if pw, ok := server.User.Password(); ok {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+pw)
	}
	return cmd, nil
}

var tpsLine = regexp.MustCompile(`^tps = ([0-9.]+) \(without initial connection time\)`)

// ParseTPS returns the figure of the first "tps = ... (without initial
// connection time)" line of pgbench's output, and an error when there is
// none.
func ParseTPS(output string) (float64, error) {
	sc := bufio.NewScanner(strings.NewReader(output))
	for sc.Scan() {
		if m := tpsLine.FindStringSubmatch(sc.Text()); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, errors.New("pgbench printed no tps line")
}

// CreateDatabase creates the database name through admin, a connection to
// any database on the same server. name is used as an unquoted identifier:
// callers must make sure it is one.
func CreateDatabase(ctx context.Context, admin *sql.DB, name string) error {
	_, err := admin.ExecContext(ctx, "CREATE DATABASE "+name)
	return err
}

// DropDatabase drops the database name through admin, if it exists,
// disconnecting any sessions still using it. name is used as an unquoted
// identifier: callers must make sure it is one.
func DropDatabase(ctx context.Context, admin *sql.DB, name string) error {
	_, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}
