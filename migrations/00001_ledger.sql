-- +goose Up
CREATE TABLE ledger_placeholder (id bigint);
-- +goose Down
DROP TABLE ledger_placeholder;
