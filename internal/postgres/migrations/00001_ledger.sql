-- The double-entry ledger: accounts, transfers and entries.
--
-- The database enforces what it can, as a second line behind the ledger
-- package:
--   * amounts are positive; currencies are ISO-4217-shaped and consistent
--     between a transfer, its entries and their accounts (composite foreign keys
--     on (account id, currency));
--   * every transfer has exactly one debit and one credit entry, on its own
--     accounts, for its own amount (a deferred constraint trigger checked at
--     commit), so every transfer balances;
--   * a customer balance is never negative (CHECK); settlement may be;
--   * identifications are unique per scheme; one settlement account per currency;
--   * transfers and entries are append-only: UPDATE, DELETE and TRUNCATE raise;
--     accounts cannot be deleted and their identity columns cannot change.
-- Constraint names are part of the contract with internal/ledger, which maps
-- them to its errors.

-- +goose Up
CREATE TABLE accounts (
    id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    owner          text        NOT NULL,
    currency       text        NOT NULL,
    kind           text        NOT NULL,
    scheme_name    text        NOT NULL,
    identification text        NOT NULL,
    name           text        NOT NULL DEFAULT '',
    balance        bigint      NOT NULL DEFAULT 0,
    version        bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_pkey PRIMARY KEY (id),
    CONSTRAINT accounts_id_currency_key UNIQUE (id, currency),
    CONSTRAINT accounts_identification_key UNIQUE (scheme_name, identification),
    CONSTRAINT accounts_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT accounts_kind_check CHECK (kind IN ('customer', 'settlement')),
    CONSTRAINT accounts_owner_check CHECK (owner <> ''),
    CONSTRAINT accounts_sort_code_check CHECK (
        scheme_name <> 'UK.OBIE.SortCodeAccountNumber' OR identification ~ '^[0-9]{14}$'),
    CONSTRAINT accounts_customer_balance_check CHECK (kind <> 'customer' OR balance >= 0),
    CONSTRAINT accounts_version_check CHECK (version >= 0)
);
CREATE UNIQUE INDEX accounts_settlement_currency_key ON accounts (currency) WHERE kind = 'settlement';
CREATE INDEX accounts_owner_idx ON accounts (owner, created_at, id);

CREATE TABLE transfers (
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    debit_account_id  uuid        NOT NULL,
    credit_account_id uuid        NOT NULL,
    currency          text        NOT NULL,
    amount            bigint      NOT NULL,
    reference         text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfers_pkey PRIMARY KEY (id),
    CONSTRAINT transfers_amount_check CHECK (amount > 0),
    CONSTRAINT transfers_distinct_accounts_check CHECK (debit_account_id <> credit_account_id),
    CONSTRAINT transfers_debit_account_fkey FOREIGN KEY (debit_account_id, currency)
        REFERENCES accounts (id, currency),
    CONSTRAINT transfers_credit_account_fkey FOREIGN KEY (credit_account_id, currency)
        REFERENCES accounts (id, currency)
);

CREATE TABLE entries (
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    transfer_id   uuid        NOT NULL,
    account_id    uuid        NOT NULL,
    currency      text        NOT NULL,
    direction     text        NOT NULL,
    amount        bigint      NOT NULL,
    balance_after bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    CONSTRAINT entries_pkey PRIMARY KEY (id),
    CONSTRAINT entries_amount_check CHECK (amount > 0),
    CONSTRAINT entries_direction_check CHECK (direction IN ('debit', 'credit')),
    CONSTRAINT entries_transfer_direction_key UNIQUE (transfer_id, direction),
    CONSTRAINT entries_transfer_fkey FOREIGN KEY (transfer_id) REFERENCES transfers (id),
    CONSTRAINT entries_account_fkey FOREIGN KEY (account_id, currency) REFERENCES accounts (id, currency)
);
-- Keyset pagination of an account's entries over (booking time, id).
CREATE INDEX entries_account_booking_idx ON entries (account_id, created_at, id);

-- Append-only: any UPDATE, DELETE or TRUNCATE of transfers or entries fails.
-- +goose StatementBegin
CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % is not allowed, the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'ledger_append_only';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- Only the balance, version and name of an account may change.
-- +goose StatementBegin
CREATE FUNCTION ledger_account_identity_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.owner <> OLD.owner OR NEW.currency <> OLD.currency OR NEW.kind <> OLD.kind
        OR NEW.scheme_name <> OLD.scheme_name OR NEW.identification <> OLD.identification
        OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'ledger: the identity of account % cannot change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'accounts_identity_fixed';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER accounts_identity_fixed BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_account_identity_fixed();

-- Every transfer balances: at commit, it has exactly one debit entry on its
-- debit account and one credit entry on its credit account, both for its
-- amount. (A later extra entry is impossible: UNIQUE (transfer_id, direction).)
-- +goose StatementBegin
CREATE FUNCTION ledger_check_transfer_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    SELECT count(*) = 2
       AND count(*) FILTER (WHERE e.direction = 'debit' AND e.account_id = NEW.debit_account_id) = 1
       AND count(*) FILTER (WHERE e.direction = 'credit' AND e.account_id = NEW.credit_account_id) = 1
       AND bool_and(e.amount = NEW.amount AND e.currency = NEW.currency)
      INTO ok
      FROM entries e
     WHERE e.transfer_id = NEW.id;
    IF NOT coalesce(ok, false) THEN
        RAISE EXCEPTION 'ledger: transfer % does not balance', NEW.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'transfers_balanced';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER transfers_balanced AFTER INSERT ON transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer_balanced();

-- +goose Down
DROP TABLE entries;
DROP TABLE transfers;
DROP TABLE accounts;
DROP FUNCTION ledger_check_transfer_balanced();
DROP FUNCTION ledger_account_identity_fixed();
DROP FUNCTION ledger_reject_change();
