-- Open Banking resources on top of the ledger: consents (payment and account
-- access), domestic payments and idempotency keys.
--
-- The database enforces, behind internal/openbanking:
--   * a consent's status is one of the OB names, and a consent never leaves a
--     final state (Rejected, Consumed, Revoked): the allowed transitions are
--     AwaitingAuthorisation -> Authorised | Rejected | Revoked and
--     Authorised -> Consumed (payment) | Revoked (account access);
--   * an authorised payment consent names its PSU and debtor account;
--   * one payment per consent (payments_consent_key), and a payment has a
--     ledger transfer exactly when it was not Rejected;
--   * an idempotency key is unique per (client, operation) and records the
--     SHA-256 of the request body and the resource it created.
-- Constraint names are part of the contract with internal/openbanking.

-- +goose Up
CREATE TABLE consents (
    id                  uuid        NOT NULL,
    kind                text        NOT NULL,
    client_id           text        NOT NULL,
    status              text        NOT NULL,
    psu                 text,
    created_at          timestamptz NOT NULL,
    status_updated_at   timestamptz NOT NULL,
    -- payment consents
    currency            text,
    amount              bigint,
    initiation          text,
    authorisation       text,
    risk                text,
    reference           text,
    creditor_account_id uuid,
    creditor_internal   boolean,
    debtor_account_id   uuid,
    -- account access consents
    permissions         text,
    expires_at          timestamptz,
    transaction_from    timestamptz,
    transaction_to      timestamptz,
    CONSTRAINT consents_pkey PRIMARY KEY (id),
    CONSTRAINT consents_kind_check CHECK (kind IN ('payment', 'account-access')),
    CONSTRAINT consents_client_check CHECK (client_id <> ''),
    CONSTRAINT consents_status_check CHECK (
        status IN ('AwaitingAuthorisation', 'Authorised', 'Rejected', 'Consumed', 'Revoked')),
    CONSTRAINT consents_payment_fields_check CHECK (kind <> 'payment' OR (
        currency IS NOT NULL AND amount > 0 AND initiation IS NOT NULL AND risk IS NOT NULL AND reference IS NOT NULL
        AND creditor_account_id IS NOT NULL AND creditor_internal IS NOT NULL)),
    CONSTRAINT consents_access_fields_check CHECK (kind <> 'account-access' OR permissions <> ''),
    CONSTRAINT consents_authorised_psu_check CHECK (
        status NOT IN ('Authorised', 'Consumed') OR psu IS NOT NULL),
    CONSTRAINT consents_authorised_debtor_check CHECK (
        kind <> 'payment' OR status NOT IN ('Authorised', 'Consumed') OR debtor_account_id IS NOT NULL),
    CONSTRAINT consents_creditor_fkey FOREIGN KEY (creditor_account_id) REFERENCES accounts (id),
    CONSTRAINT consents_debtor_fkey FOREIGN KEY (debtor_account_id) REFERENCES accounts (id)
);
CREATE INDEX consents_client_idx ON consents (client_id, created_at);

-- +goose StatementBegin
CREATE FUNCTION consents_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.kind <> OLD.kind OR NEW.client_id <> OLD.client_id
        OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'openbanking: the identity of consent % cannot change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'consents_identity_fixed';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'AwaitingAuthorisation' AND NEW.status IN ('Authorised', 'Rejected', 'Revoked'))
        OR (OLD.status = 'Authorised' AND OLD.kind = 'payment' AND NEW.status = 'Consumed')
        OR (OLD.status = 'Authorised' AND OLD.kind = 'account-access' AND NEW.status = 'Revoked')) THEN
        RAISE EXCEPTION 'openbanking: consent % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'consents_transition';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER consents_transition BEFORE UPDATE ON consents
    FOR EACH ROW EXECUTE FUNCTION consents_check_transition();

CREATE TABLE payments (
    id                uuid        NOT NULL,
    consent_id        uuid        NOT NULL,
    client_id         text        NOT NULL,
    status            text        NOT NULL,
    transfer_id       uuid,
    created_at        timestamptz NOT NULL,
    status_updated_at timestamptz NOT NULL,
    CONSTRAINT payments_pkey PRIMARY KEY (id),
    CONSTRAINT payments_consent_key UNIQUE (consent_id),
    CONSTRAINT payments_consent_fkey FOREIGN KEY (consent_id) REFERENCES consents (id),
    CONSTRAINT payments_transfer_fkey FOREIGN KEY (transfer_id) REFERENCES transfers (id),
    CONSTRAINT payments_status_check CHECK (
        status IN ('AcceptedSettlementCompleted', 'AcceptedCreditSettlementCompleted', 'Rejected')),
    CONSTRAINT payments_transfer_check CHECK ((status = 'Rejected') = (transfer_id IS NULL))
);

CREATE TABLE idempotency_keys (
    client_id    text        NOT NULL,
    operation    text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    resource_id  uuid        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (client_id, operation, key),
    CONSTRAINT idempotency_keys_key_check CHECK (char_length(key) BETWEEN 1 AND 40),
    CONSTRAINT idempotency_keys_hash_check CHECK (length(request_hash) = 32),
    CONSTRAINT idempotency_keys_expiry_check CHECK (expires_at > created_at)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE payments;
DROP TRIGGER consents_transition ON consents;
DROP TABLE consents;
DROP FUNCTION consents_check_transition();
