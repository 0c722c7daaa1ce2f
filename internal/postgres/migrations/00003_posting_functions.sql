-- Server-side postings: a ledger transfer and a whole domestic payment each in
-- one statement, so that a payment costs one database round trip instead of
-- one per step (begin, claim, lock, post, record, commit).
--
-- ledger_post is the only code that moves money: internal/ledger calls it for
-- every transfer, and ob_create_payment calls it for a payment's transfer.
-- ob_claim_key is the only code that claims an idempotency key: for payment
-- consents internal/openbanking calls it, for payments ob_create_payment.
-- The checks of migrations 00001 and 00002 (no overdraft, balanced transfers,
-- append-only entries, consent transitions, one payment per consent) still
-- guard every row these functions write.
--
-- Errors a caller must tell apart are raised with SQLSTATEs of their own
-- (class OB), part of the contract with internal/openbanking:
--   OB001 consent not found (or not a payment consent)
--   OB002 consent belongs to another client or PSU
--   OB003 consent is not Authorised
--   OB004 Initiation or Risk differ from the consent's
--   OB005 idempotency key reused with another request body
--   OB010 the posting failed; the message is ledger_post's outcome

-- +goose Up

-- ledger_post books p_amount from p_from to p_to as transfer p_id, inside the
-- caller's transaction. It locks both accounts in id order (so two postings
-- never wait for each other in a cycle), decides on the locked balances, moves
-- them in place and writes the transfer with its debit and credit entries.
-- The booking time is p_now, or the latest booking time of either account
-- when that is later, so an account's booking times never decrease.
--
-- outcome is 'posted' (booked_at set), or, with nothing written:
-- 'invalid_amount', 'same_account', 'debit_account_not_found',
-- 'credit_account_not_found', 'currency_mismatch', 'insufficient_funds',
-- 'overflow'. The transaction stays usable after any outcome.
-- +goose StatementBegin
CREATE FUNCTION ledger_post(
    p_id uuid, p_from uuid, p_to uuid, p_currency text, p_amount bigint, p_reference text, p_now timestamptz,
    OUT outcome text, OUT booked_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    r        record;
    d_found  boolean := false;
    c_found  boolean := false;
    d_cur    text;
    c_cur    text;
    d_kind   text;
    d_bal    bigint;
    c_bal    bigint;
    latest   timestamptz;
BEGIN
    IF p_id IS NULL OR p_from IS NULL OR p_to IS NULL OR p_currency IS NULL OR p_now IS NULL THEN
        RAISE EXCEPTION 'ledger_post: id, accounts, currency and time are required'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_amount IS NULL OR p_amount <= 0 THEN
        outcome := 'invalid_amount';
        RETURN;
    END IF;
    IF p_from = p_to THEN
        outcome := 'same_account';
        RETURN;
    END IF;
    FOR r IN SELECT a.id, a.currency, a.kind, a.balance FROM accounts a
              WHERE a.id IN (p_from, p_to) ORDER BY a.id FOR UPDATE LOOP
        IF r.id = p_from THEN
            d_found := true; d_cur := r.currency; d_kind := r.kind; d_bal := r.balance;
        ELSE
            c_found := true; c_cur := r.currency; c_bal := r.balance;
        END IF;
    END LOOP;
    IF NOT d_found THEN
        outcome := 'debit_account_not_found';
        RETURN;
    ELSIF NOT c_found THEN
        outcome := 'credit_account_not_found';
        RETURN;
    ELSIF d_cur IS DISTINCT FROM p_currency OR c_cur IS DISTINCT FROM p_currency THEN
        outcome := 'currency_mismatch';
        RETURN;
    ELSIF d_kind = 'customer' AND d_bal < p_amount THEN
        -- Decided on the locked balance: it cannot change before commit.
        outcome := 'insufficient_funds';
        RETURN;
    ELSIF d_bal < (-9223372036854775807 - 1) + p_amount OR c_bal > 9223372036854775807 - p_amount THEN
        outcome := 'overflow';
        RETURN;
    END IF;

    -- Both rows are locked, so every entry of these accounts is committed (or
    -- ours) and visible to this statement's snapshot.
    latest := greatest(
        (SELECT max(e.created_at) FROM entries e WHERE e.account_id = p_from),
        (SELECT max(e.created_at) FROM entries e WHERE e.account_id = p_to));
    booked_at := greatest(p_now, latest);

    UPDATE accounts a
       SET balance = a.balance + CASE WHEN a.id = p_from THEN -p_amount ELSE p_amount END,
           version = a.version + 1
     WHERE a.id IN (p_from, p_to);
    INSERT INTO transfers (id, debit_account_id, credit_account_id, currency, amount, reference, created_at)
    VALUES (p_id, p_from, p_to, p_currency, p_amount, coalesce(p_reference, ''), booked_at);
    -- Debit first: entry ids grow in booking order under the row locks.
    INSERT INTO entries (transfer_id, account_id, currency, direction, amount, balance_after, created_at)
    VALUES (p_id, p_from, p_currency, 'debit', p_amount, d_bal - p_amount, booked_at),
           (p_id, p_to, p_currency, 'credit', p_amount, c_bal + p_amount, booked_at);
    outcome := 'posted';
END;
$$;
-- +goose StatementEnd

-- ob_claim_key records idempotency key p_key of client p_client for operation
-- p_operation, pointing at p_resource, the id of the resource the caller
-- creates in the same transaction. existing is NULL when the caller now owns
-- the key (a new key, or one whose previous use expired) and must create the
-- resource; otherwise it is the resource recorded with the key, and nothing
-- changed. The same key with another request hash raises OB005. A key held
-- by a concurrent, uncommitted transaction makes the INSERT wait for it: when
-- it commits, the conflict branch locks its row and it is read here; when it
-- rolls back, this insert simply succeeds.
-- +goose StatementBegin
CREATE FUNCTION ob_claim_key(
    p_client text, p_operation text, p_key text, p_request_hash bytea, p_resource uuid,
    p_now timestamptz, p_expires_at timestamptz,
    OUT existing uuid)
LANGUAGE plpgsql AS $$
DECLARE
    claimed uuid;
    prev    record;
BEGIN
    -- ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE is
    -- false, so the SELECT below reads it committed and stable.
    INSERT INTO idempotency_keys AS k
        (client_id, operation, key, request_hash, resource_id, created_at, expires_at)
    VALUES (p_client, p_operation, p_key, p_request_hash, p_resource, p_now, p_expires_at)
    ON CONFLICT (client_id, operation, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, resource_id = EXCLUDED.resource_id,
            created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
        WHERE k.expires_at <= EXCLUDED.created_at
    RETURNING k.resource_id INTO claimed;
    IF claimed IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT k.request_hash, k.resource_id INTO prev FROM idempotency_keys k
     WHERE k.client_id = p_client AND k.operation = p_operation AND k.key = p_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'openbanking: idempotency key row vanished';
    END IF;
    IF prev.request_hash IS DISTINCT FROM p_request_hash THEN
        RAISE EXCEPTION 'openbanking: idempotency key reused with another request' USING ERRCODE = 'OB005';
    END IF;
    existing := prev.resource_id;
END;
$$;
-- +goose StatementEnd

-- ob_create_payment executes an Authorised payment consent as payment
-- p_payment_id, all in the caller's statement: it claims the idempotency key
-- first (a concurrent duplicate waits here for the first to commit), locks the
-- consent, checks its client, PSU, status, Initiation and Risk, posts the
-- transfer (transfer id p_transfer_id, booking time from p_booking_now), marks
-- the consent Consumed and records the payment: Rejected with nothing posted
-- when the debtor cannot fund it, else AcceptedCreditSettlementCompleted
-- (internal creditor) or AcceptedSettlementCompleted.
--
-- When the key was already used with the same request hash, it changes
-- nothing and returns the recorded payment id in o_existing. Every refusal
-- raises (OB001-OB005, OB010), so the statement writes nothing.
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
    ELSE
        RAISE EXCEPTION '%', posting.outcome USING ERRCODE = 'OB010';
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
DROP FUNCTION ob_create_payment(uuid, text, text, uuid, text, text, bytea, timestamptz, text, text, timestamptz,
    uuid, timestamptz);
DROP FUNCTION ob_claim_key(text, text, text, bytea, uuid, timestamptz, timestamptz);
DROP FUNCTION ledger_post(uuid, uuid, uuid, text, bigint, text, timestamptz);
