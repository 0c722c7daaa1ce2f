package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

var dbNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ensureDatabase creates the database named in dsn when it does not exist,
// connecting to the "postgres" maintenance database of the same server.
func ensureDatabase(ctx context.Context, dsn string, log *slog.Logger) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	name := strings.Trim(u.Path, "/")
	if !dbNamePattern.MatchString(name) {
		return fmt.Errorf("DATABASE_URL: database name %q must match %s to be created automatically", name, dbNamePattern)
	}
	// Try the database itself first: the common case needs no maintenance connection.
	if db, err := sql.Open("pgx", dsn); err == nil {
		pingErr := pingWithin(ctx, db, 5*time.Second)
		db.Close()
		if pingErr == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(pingErr, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
			return fmt.Errorf("connect to database %s: %w", name, pingErr)
		}
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("pgx", admin.String())
	if err != nil {
		return fmt.Errorf("open maintenance database: %w", err)
	}
	defer db.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = db.ExecContext(cctx, `CREATE DATABASE "`+name+`"`)
	// Created meanwhile, by another node starting at the same time: PostgreSQL
	// says duplicate_database when the other creation had committed, and
	// unique_violation on pg_database's name index when both were in flight.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	log.InfoContext(ctx, "database created", "database", name)
	return nil
}

func pingWithin(ctx context.Context, db *sql.DB, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return db.PingContext(ctx)
}

// openDB opens the gorm handle with the configured pool.
func openDB(c config) (*gorm.DB, *sql.DB, error) {
	db, err := gorm.Open(postgres.Open(c.DatabaseURL), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		TranslateError:         false,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB.SetMaxOpenConns(c.DBMaxOpenConns)
	sqlDB.SetMaxIdleConns(c.DBMaxIdleConns)
	sqlDB.SetConnMaxLifetime(c.DBConnMaxLife)
	sqlDB.SetConnMaxIdleTime(c.DBConnMaxIdle)
	return db, sqlDB, nil
}
