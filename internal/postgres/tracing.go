package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
)

// spanKey is where a statement's span waits for the statement to finish.
const spanKey = "payments:span"

// maxStatementText bounds the statement text a span carries.
const maxStatementText = 1024

// Trace records every statement run through db as a client span "db
// <OPERATION>", a child of the span in the statement's context. Its
// attributes are the database system, the operation, the statement text
// with its placeholders (never the values bound to them) and, on failure,
// the SQLSTATE (never the server's message, whose detail may quote values).
// Without Trace nothing is recorded and nothing is spent.
func Trace(db *gorm.DB, tp trace.TracerProvider) error {
	tracer := tp.Tracer("github.com/obpay/payments/internal/postgres")
	before := func(tx *gorm.DB) {
		ctx, span := tracer.Start(tx.Statement.Context, "db", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "postgresql")))
		tx.Statement.Context = ctx
		tx.InstanceSet(spanKey, span)
	}
	after := func(tx *gorm.DB) {
		v, ok := tx.InstanceGet(spanKey)
		if !ok {
			return
		}
		span := v.(trace.Span)
		text := tx.Statement.SQL.String()
		op, _, _ := strings.Cut(strings.TrimSpace(text), " ")
		op = strings.ToUpper(op)
		if len(text) > maxStatementText {
			text = text[:maxStatementText]
		}
		span.SetName("db " + op)
		span.SetAttributes(attribute.String("db.operation.name", op), attribute.String("db.query.text", text))
		if err := tx.Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			var pg *pgconn.PgError
			if errors.As(err, &pg) {
				span.SetAttributes(attribute.String("db.response.status_code", pg.Code))
			}
			span.SetStatus(codes.Error, "statement failed")
		}
		span.End()
	}
	cb := db.Callback()
	type registrar interface {
		Register(name string, fn func(*gorm.DB)) error
	}
	steps := []struct {
		name          string
		before, after registrar
	}{
		{"create", cb.Create().Before("*"), cb.Create().After("*")},
		{"query", cb.Query().Before("*"), cb.Query().After("*")},
		{"update", cb.Update().Before("*"), cb.Update().After("*")},
		{"delete", cb.Delete().Before("*"), cb.Delete().After("*")},
		{"row", cb.Row().Before("*"), cb.Row().After("*")},
		{"raw", cb.Raw().Before("*"), cb.Raw().After("*")},
	}
	for _, s := range steps {
		if err := s.before.Register("payments:trace_before_"+s.name, before); err != nil {
			return err
		}
		if err := s.after.Register("payments:trace_after_"+s.name, after); err != nil {
			return err
		}
	}
	return nil
}
