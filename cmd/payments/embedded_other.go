//go:build !unix

package main

import (
	"context"
	"errors"
	"log/slog"
)

func startEmbedded(context.Context, config, *slog.Logger) (string, func(), error) {
	return "", nil, errors.New("DATABASE_URL is unset, and the embedded PostgreSQL runs on Linux and macOS only: set DATABASE_URL to a PostgreSQL server")
}
