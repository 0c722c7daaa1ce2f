-- The sandbox authorization server's state (internal/devauth, only with
-- PAYMENTS_DEV_AUTH=true), so that a restart strands no authorised consent
-- and signs no one out: registered clients, authorization codes, pushed
-- authorization requests, access and refresh tokens, and the ids of accepted
-- client assertions.
--
-- Tokens, codes and request_uris are kept as their SHA-256 (hash), never as
-- themselves: reading these tables hands out no live credential. Every row
-- has an expires_at; lookups ignore expired rows, and serve deletes them
-- every minute in bounded batches (the *_expires indexes). The per-client
-- indexes serve the per-client caps, counted at each issuance.

-- +goose Up
CREATE TABLE devauth_clients (
    client_id     text        NOT NULL PRIMARY KEY,
    secret_hash   bytea       CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    jwks          jsonb,
    auth_method   text        NOT NULL,
    redirect_uris text[]      NOT NULL,
    grant_types   text[]      NOT NULL,
    scope         text        NOT NULL,
    client_name   text        NOT NULL,
    issued_at     timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    CONSTRAINT devauth_clients_credentials_check CHECK (secret_hash IS NOT NULL OR jwks IS NOT NULL)
);
CREATE INDEX devauth_clients_expires ON devauth_clients (expires_at);

CREATE TABLE devauth_codes (
    hash         bytea       NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    client_id    text        NOT NULL,
    redirect_uri text        NOT NULL,
    challenge    text        NOT NULL,
    dpop_jkt     text        NOT NULL,
    scope        text        NOT NULL,
    consent_id   text        NOT NULL,
    psu          text        NOT NULL,
    expires_at   timestamptz NOT NULL,
    -- used_at is set by the one exchange that spends the code; revoked by
    -- a second presentation, after which no token is issued from it.
    used_at      timestamptz,
    revoked      boolean     NOT NULL DEFAULT false
);
CREATE INDEX devauth_codes_client ON devauth_codes (client_id, expires_at);
CREATE INDEX devauth_codes_expires ON devauth_codes (expires_at);

CREATE TABLE devauth_tokens (
    hash       bytea       NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    kind       text        NOT NULL CHECK (kind IN ('access', 'refresh')),
    client_id  text        NOT NULL,
    subject    text        NOT NULL,
    scope      text        NOT NULL,
    consent_id text        NOT NULL,
    jkt        text        NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    -- family is the hash of the authorization code the token descends
    -- from (NULL for client credentials): a reused code revokes them all.
    family     bytea
);
CREATE INDEX devauth_tokens_client ON devauth_tokens (client_id, kind, expires_at);
CREATE INDEX devauth_tokens_family ON devauth_tokens (family) WHERE family IS NOT NULL;
CREATE INDEX devauth_tokens_expires ON devauth_tokens (expires_at);

CREATE TABLE devauth_requests (
    hash       bytea       NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    client_id  text        NOT NULL,
    request    jsonb       NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX devauth_requests_client ON devauth_requests (client_id, expires_at);
CREATE INDEX devauth_requests_expires ON devauth_requests (expires_at);

CREATE TABLE devauth_assertions (
    key        text        NOT NULL PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX devauth_assertions_expires ON devauth_assertions (expires_at);

-- +goose Down
DROP TABLE devauth_assertions;
DROP TABLE devauth_requests;
DROP TABLE devauth_tokens;
DROP TABLE devauth_codes;
DROP TABLE devauth_clients;
