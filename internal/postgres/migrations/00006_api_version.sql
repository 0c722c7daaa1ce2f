-- The API version a consent was created on: '3.1' (/open-banking/v3.1) or
-- '4.0' (/open-banking/v4.0). Every consent created before this migration
-- was created on v3.1, the only version served then. A payment has its
-- consent's version.
--
-- The version is part of a consent's identity: consents_check_transition
-- refuses to change it. ob_create_payment takes the payment request's version
-- and refuses, with SQLSTATE OB006 (openbanking.ErrOtherVersion), to execute a
-- consent created on another one, after the kind and owner checks and before
-- the status check, as openbanking.CheckPayment does: OB does not let a
-- consent created on one version be executed on another. Nothing is written
-- then, and the idempotency key is not consumed. The form without the
-- version remains, for v3.1 payments (below). The Down step restores 00005's
-- function and 00002's trigger function.

-- +goose Up
ALTER TABLE consents ADD COLUMN api_version text NOT NULL DEFAULT '3.1';
ALTER TABLE consents ADD CONSTRAINT consents_api_version_check CHECK (api_version IN ('3.1', '4.0'));

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION consents_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.kind <> OLD.kind OR NEW.client_id <> OLD.client_id
        OR NEW.created_at <> OLD.created_at OR NEW.api_version <> OLD.api_version THEN
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

DROP FUNCTION ob_create_payment(uuid, text, text, uuid, text, text, bytea, timestamptz, text, text, timestamptz, uuid, timestamptz);

-- +goose StatementBegin
CREATE FUNCTION ob_create_payment(
    p_payment_id uuid, p_client text, p_psu text, p_consent uuid,
    p_operation text, p_key text, p_request_hash bytea, p_key_expires_at timestamptz,
    p_initiation text, p_risk text, p_now timestamptz,
    p_transfer_id uuid, p_booking_now timestamptz, p_version text,
    OUT o_existing uuid, OUT o_status text,
    OUT o_debtor_scheme text, OUT o_debtor_identification text, OUT o_debtor_name text)
LANGUAGE plpgsql AS $$
DECLARE
    con      record;
    posting  record;
BEGIN
    o_existing := ob_claim_key(p_client, p_operation, p_key, p_request_hash, p_payment_id, p_now, p_key_expires_at);
    IF o_existing IS NOT NULL THEN
        RETURN;
    END IF;

    SELECT c.kind, c.client_id, c.psu, c.status, c.initiation, c.risk, c.currency, c.amount, c.reference,
           c.creditor_account_id, c.creditor_internal, c.debtor_account_id, c.api_version,
           a.scheme_name, a.identification, a.name
      INTO con
      FROM consents c LEFT JOIN accounts a ON a.id = c.debtor_account_id
     WHERE c.id = p_consent
       FOR UPDATE OF c;
    IF NOT FOUND OR con.kind IS DISTINCT FROM 'payment' THEN
        RAISE EXCEPTION 'openbanking: no such payment consent' USING ERRCODE = 'OB001';
    ELSIF con.client_id IS DISTINCT FROM p_client OR con.psu IS DISTINCT FROM p_psu THEN
        RAISE EXCEPTION 'openbanking: consent of another client or PSU' USING ERRCODE = 'OB002';
    ELSIF con.api_version IS DISTINCT FROM p_version THEN
        -- OB: a consent created on one version is not executed on another.
        RAISE EXCEPTION 'openbanking: consent created on %', con.api_version USING ERRCODE = 'OB006';
    ELSIF con.status IS DISTINCT FROM 'Authorised' THEN
        RAISE EXCEPTION 'openbanking: consent is %', con.status USING ERRCODE = 'OB003';
    ELSIF con.initiation::jsonb IS DISTINCT FROM p_initiation::jsonb
       OR con.risk::jsonb IS DISTINCT FROM p_risk::jsonb THEN
        -- Compared as JSON values (jsonb equality ignores member order and
        -- white space), the same rule as openbanking.CheckPayment: a new
        -- encoding of the same terms still matches its consent.
        RAISE EXCEPTION 'openbanking: request differs from the consent' USING ERRCODE = 'OB004';
    END IF;

    SELECT * INTO posting FROM ledger_post(p_transfer_id, con.debtor_account_id, con.creditor_account_id,
        con.currency, con.amount, con.reference, p_booking_now);
    IF posting.outcome = 'posted' THEN
        o_status := CASE WHEN con.creditor_internal THEN 'AcceptedCreditSettlementCompleted'
                         ELSE 'AcceptedSettlementCompleted' END;
    ELSIF posting.outcome = 'insufficient_funds' THEN
        o_status := 'Rejected';
        p_transfer_id := NULL;
    ELSIF posting.outcome = 'debit_account_not_found' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB011';
    ELSIF posting.outcome = 'credit_account_not_found' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB012';
    ELSIF posting.outcome = 'currency_mismatch' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB013';
    ELSIF posting.outcome = 'overflow' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB014';
    ELSIF posting.outcome = 'same_account' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB015';
    ELSIF posting.outcome = 'invalid_amount' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB016';
    ELSE
        RAISE EXCEPTION 'openbanking: unknown posting outcome' USING ERRCODE = 'OB010';
    END IF;

    UPDATE consents SET status = 'Consumed', status_updated_at = p_now WHERE id = p_consent;
    INSERT INTO payments (id, consent_id, client_id, status, transfer_id, created_at, status_updated_at)
    VALUES (p_payment_id, p_consent, p_client, o_status, p_transfer_id, p_now, p_now);
    o_debtor_scheme := con.scheme_name;
    o_debtor_identification := con.identification;
    o_debtor_name := con.name;
END;
$$;
-- +goose StatementEnd

-- The previous form, without the version, stays for the nodes of the
-- release before this one while a deployment replaces them: they know only
-- v3.1, so their payments are v3.1 payments.
-- +goose StatementBegin
CREATE FUNCTION ob_create_payment(
    p_payment_id uuid, p_client text, p_psu text, p_consent uuid,
    p_operation text, p_key text, p_request_hash bytea, p_key_expires_at timestamptz,
    p_initiation text, p_risk text, p_now timestamptz,
    p_transfer_id uuid, p_booking_now timestamptz,
    OUT o_existing uuid, OUT o_status text,
    OUT o_debtor_scheme text, OUT o_debtor_identification text, OUT o_debtor_name text)
LANGUAGE sql AS $$
    SELECT * FROM ob_create_payment(p_payment_id, p_client, p_psu, p_consent, p_operation, p_key, p_request_hash,
        p_key_expires_at, p_initiation, p_risk, p_now, p_transfer_id, p_booking_now, '3.1');
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ob_create_payment(uuid, text, text, uuid, text, text, bytea, timestamptz, text, text, timestamptz, uuid, timestamptz);
DROP FUNCTION ob_create_payment(uuid, text, text, uuid, text, text, bytea, timestamptz, text, text, timestamptz, uuid, timestamptz, text);

-- +goose StatementBegin
CREATE FUNCTION ob_create_payment(
    p_payment_id uuid, p_client text, p_psu text, p_consent uuid,
    p_operation text, p_key text, p_request_hash bytea, p_key_expires_at timestamptz,
    p_initiation text, p_risk text, p_now timestamptz,
    p_transfer_id uuid, p_booking_now timestamptz,
    OUT o_existing uuid, OUT o_status text,
    OUT o_debtor_scheme text, OUT o_debtor_identification text, OUT o_debtor_name text)
LANGUAGE plpgsql AS $$
DECLARE
    con      record;
    posting  record;
BEGIN
    o_existing := ob_claim_key(p_client, p_operation, p_key, p_request_hash, p_payment_id, p_now, p_key_expires_at);
    IF o_existing IS NOT NULL THEN
        RETURN;
    END IF;

    SELECT c.kind, c.client_id, c.psu, c.status, c.initiation, c.risk, c.currency, c.amount, c.reference,
           c.creditor_account_id, c.creditor_internal, c.debtor_account_id,
           a.scheme_name, a.identification, a.name
      INTO con
      FROM consents c LEFT JOIN accounts a ON a.id = c.debtor_account_id
     WHERE c.id = p_consent
       FOR UPDATE OF c;
    IF NOT FOUND OR con.kind IS DISTINCT FROM 'payment' THEN
        RAISE EXCEPTION 'openbanking: no such payment consent' USING ERRCODE = 'OB001';
    ELSIF con.client_id IS DISTINCT FROM p_client OR con.psu IS DISTINCT FROM p_psu THEN
        RAISE EXCEPTION 'openbanking: consent of another client or PSU' USING ERRCODE = 'OB002';
    ELSIF con.status IS DISTINCT FROM 'Authorised' THEN
        RAISE EXCEPTION 'openbanking: consent is %', con.status USING ERRCODE = 'OB003';
    ELSIF con.initiation::jsonb IS DISTINCT FROM p_initiation::jsonb
       OR con.risk::jsonb IS DISTINCT FROM p_risk::jsonb THEN
        -- Compared as JSON values (jsonb equality ignores member order and
        -- white space), the same rule as openbanking.CheckPayment: a new
        -- encoding of the same terms still matches its consent.
        RAISE EXCEPTION 'openbanking: request differs from the consent' USING ERRCODE = 'OB004';
    END IF;

    SELECT * INTO posting FROM ledger_post(p_transfer_id, con.debtor_account_id, con.creditor_account_id,
        con.currency, con.amount, con.reference, p_booking_now);
    IF posting.outcome = 'posted' THEN
        o_status := CASE WHEN con.creditor_internal THEN 'AcceptedCreditSettlementCompleted'
                         ELSE 'AcceptedSettlementCompleted' END;
    ELSIF posting.outcome = 'insufficient_funds' THEN
        o_status := 'Rejected';
        p_transfer_id := NULL;
    ELSIF posting.outcome = 'debit_account_not_found' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB011';
    ELSIF posting.outcome = 'credit_account_not_found' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB012';
    ELSIF posting.outcome = 'currency_mismatch' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB013';
    ELSIF posting.outcome = 'overflow' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB014';
    ELSIF posting.outcome = 'same_account' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB015';
    ELSIF posting.outcome = 'invalid_amount' THEN
        RAISE EXCEPTION 'openbanking: posting refused' USING ERRCODE = 'OB016';
    ELSE
        RAISE EXCEPTION 'openbanking: unknown posting outcome' USING ERRCODE = 'OB010';
    END IF;

    UPDATE consents SET status = 'Consumed', status_updated_at = p_now WHERE id = p_consent;
    INSERT INTO payments (id, consent_id, client_id, status, transfer_id, created_at, status_updated_at)
    VALUES (p_payment_id, p_consent, p_client, o_status, p_transfer_id, p_now, p_now);
    o_debtor_scheme := con.scheme_name;
    o_debtor_identification := con.identification;
    o_debtor_name := con.name;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION consents_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
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

ALTER TABLE consents DROP CONSTRAINT consents_api_version_check;
ALTER TABLE consents DROP COLUMN api_version;
