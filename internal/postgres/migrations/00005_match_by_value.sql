-- The payment/consent match compares JSON values, not bytes: a consent's
-- stored Initiation and Risk and the payment's are equal when they hold the
-- same members with the same values, whatever the order of the members or
-- the white space of either encoding. So a change in how the service encodes
-- these objects (a regenerated type that orders its fields differently)
-- cannot make an outstanding consent unpayable. Only the comparison changes;
-- the Down step restores 00004's function.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ob_create_payment(
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

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ob_create_payment(
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
    ELSIF con.initiation IS DISTINCT FROM p_initiation OR con.risk IS DISTINCT FROM p_risk THEN
        -- text equality under the database's deterministic collation is
        -- byte equality.
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

