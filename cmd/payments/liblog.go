package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// maxLibraryLine bounds one line a library logs on its own.
const maxLibraryLine = 2048

// routeLibraryLogs sends what libraries log by themselves through log, so
// that every line of a JSON log is JSON: go-redis's messages (dial failures,
// pool trouble) at WARN, and anything written with the standard log package
// at INFO (slog.SetDefault routes it).
func routeLibraryLogs(log *slog.Logger) {
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log: log.With("component", "redis")})
}

// redisLogger is go-redis's logger interface over slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if len(msg) > maxLibraryLine {
		msg = msg[:maxLibraryLine] + "..."
	}
	l.log.WarnContext(ctx, msg)
}
