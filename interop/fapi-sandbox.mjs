// fapi-sandbox.mjs plays a FAPI 2.0 aggregator built on panva's oauth4webapi
// against the payments service's own sandbox authorization server
// (PAYMENTS_DEV_AUTH=true): AS metadata discovery (RFC 8414) on the service's
// issuer, private_key_jwt client authentication (RFC 7523) as the
// pre-registered client sandbox-tpp-fapi with the published test key
// (docs/sandbox-tpp-fapi.jwk), PKCE S256 (RFC 7636), DPoP-bound codes and
// tokens (RFC 9449), pushed authorization requests (RFC 9126) naming the
// consent in authorization_details (RFC 9396) and the sandbox customer, and
// the authorization response's iss check (RFC 9207).
//
// It learns alice's and bob's accounts through account-access consents, pays
// 10.00 GBP from alice to bob, reads the payment and alice's balance back,
// and prints each step: statuses and ids only, never a token, code or key.
// Any unexpected answer ends it with exit status 1.
//
// Environment:
//   INTEROP_API        the payments service's PAYMENTS_PUBLIC_URL, also the
//                      sandbox's issuer (default http://localhost:8080)
//   INTEROP_FAPI_JWK   the client's private JWK file (default
//                      ../docs/sandbox-tpp-fapi.jwk)
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

import * as oauth from 'oauth4webapi';

import { apiCaller, authorizationCodeFlow, detail, expectStatus, fail, insecure, step, withNonceRetry } from './steps.mjs';

const apiBase = process.env.INTEROP_API || 'http://localhost:8080';
const issuer = new URL(apiBase);
const jwkFile = process.env.INTEROP_FAPI_JWK || new URL('../docs/sandbox-tpp-fapi.jwk', import.meta.url);
const redirectURI = 'http://127.0.0.1/callback';
const amount = '10.00';
const call = apiCaller(apiBase);
// Every POST here creates something: each gets an idempotency key.
const api = (token, dpop, method, path, body) => call(token, dpop, method, path, body, method === 'POST');

function cents(amountString) {
  const negative = amountString.startsWith('-');
  const [units, fraction = ''] = amountString.replace(/^-/, '').split('.');
  const n = Number(units) * 100 + Number(fraction.padEnd(2, '0'));
  return negative ? -n : n;
}

// authorize pushes the authorization request (the consent, the customer and,
// for a payment, the debtor account), follows the request_uri to the
// sandbox's 303, validates the response and exchanges the code, all with
// private_key_jwt and DPoP. It returns the customer's DPoP-bound token.
async function authorize(as, client, auth, dpop, scope, consentID, psu, debtorAccount) {
  const extra = {
    authorization_details: JSON.stringify([{ type: 'openbanking_intent', openbanking_intent_id: consentID }]),
    // The sandbox's scripted approval: the customer, pushed with the request.
    psu,
  };
  if (debtorAccount) extra.debtor_account = debtorAccount;
  const tokens = await authorizationCodeFlow(as, client, auth, dpop, redirectURI, scope, extra, async (authURL) => {
    const res = await fetch(authURL, { redirect: 'manual' });
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (res.status !== 303 || !location) fail(`authorization endpoint: HTTP ${res.status}, want 303 with a Location`);
    const callback = new URL(location);
    if (!callback.href.startsWith(redirectURI)) fail(`authorization endpoint: redirected to ${callback.origin}${callback.pathname}`);
    detail(`authorization endpoint: HTTP ${res.status} to the redirect URI`);
    return callback;
  });
  const details = tokens.authorization_details;
  if (!Array.isArray(details) || details[0]?.openbanking_intent_id !== consentID) {
    fail('token endpoint: the answer does not name the consent in authorization_details');
  }
  detail(`token: token_type ${tokens.token_type}, scope "${tokens.scope}", consent ${consentID}`);
  return tokens.access_token;
}

// accountsOf has psu authorise an account-access consent and returns the
// customer's token and first GBP account.
async function accountsOf(as, client, auth, dpop, ccToken, psu) {
  let res = await api(ccToken, dpop, 'POST', '/open-banking/v3.1/aisp/account-access-consents',
    { Data: { Permissions: ['ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances'] }, Risk: {} });
  expectStatus('create account-access consent', res, 201);
  const consentID = res.body.Data.ConsentId;
  detail(`consent ${consentID}: ${res.body.Data.Status}`);
  const token = await authorize(as, client, auth, dpop, 'accounts', consentID, psu);
  res = await api(token, dpop, 'GET', '/open-banking/v3.1/aisp/accounts');
  expectStatus('list accounts', res, 200);
  const account = res.body.Data.Account.find((a) => a.Currency === 'GBP');
  if (!account) fail(`${psu} has no GBP account`);
  detail(`${psu}: account ${account.AccountId}`);
  return { token, account };
}

async function interimBooked(token, dpop, accountID) {
  const res = await api(token, dpop, 'GET', `/open-banking/v3.1/aisp/accounts/${accountID}/balances`);
  expectStatus('balances', res, 200);
  const b = res.body.Data.Balance.find((x) => x.Type === 'InterimBooked');
  if (!b) fail('no InterimBooked balance');
  const sign = b.CreditDebitIndicator === 'Debit' ? '-' : '';
  return `${sign}${b.Amount.Amount}`;
}

async function main() {
  step(`discover the sandbox authorization server ${issuer.href}`);
  const res0 = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
  const as = await oauth.processDiscoveryResponse(issuer, res0);
  for (const m of ['pushed_authorization_request_endpoint', 'token_endpoint', 'authorization_endpoint']) {
    if (!as[m]) fail(`metadata: no ${m}`);
  }
  if (!as.authorization_response_iss_parameter_supported) fail('metadata: no RFC 9207 iss parameter');
  if (!as.token_endpoint_auth_methods_supported?.includes('private_key_jwt')) fail('metadata: no private_key_jwt');
  detail(`require_pushed_authorization_requests=${as.require_pushed_authorization_requests}, ` +
    `dpop_signing_alg_values_supported=${as.dpop_signing_alg_values_supported}`);

  // Only the members WebCrypto needs: the file also describes the key.
  const { kty, crv, x, y, d, kid } = JSON.parse(readFileSync(jwkFile, 'utf8'));
  const signingKey = await crypto.subtle.importKey('jwk', { kty, crv, x, y, d },
    { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const client = { client_id: 'sandbox-tpp-fapi', token_endpoint_auth_signing_alg: 'ES256' };
  const auth = oauth.PrivateKeyJwt({ key: signingKey, kid });
  const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));

  step('client credentials token (accounts payments), private_key_jwt, DPoP-bound');
  const cc = await withNonceRetry('token endpoint', async () => {
    const r = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'accounts payments' },
      { DPoP: dpop, ...insecure });
    return oauth.processClientCredentialsResponse(as, client, r);
  });
  if (cc.token_type.toLowerCase() !== 'dpop') fail(`token endpoint: token_type ${cc.token_type}, want DPoP`);
  detail(`token: token_type ${cc.token_type}, scope "${cc.scope}"`);
  const ccToken = cc.access_token;

  step('alice authorises an account-access consent (PAR, psu pushed): her account');
  const alice = await accountsOf(as, client, auth, dpop, ccToken, 'alice');
  const before = await interimBooked(alice.token, dpop, alice.account.AccountId);
  detail(`alice's InterimBooked balance: ${before}`);

  step('bob authorises an account-access consent (PAR, psu pushed): his account number');
  const bob = await accountsOf(as, client, auth, dpop, ccToken, 'bob');
  const creditor = bob.account.Account?.[0];
  if (!creditor) fail('bob\'s account has no identification');

  step(`payment consent: ${amount} GBP from alice to bob`);
  const ref = `fapi-${randomUUID().slice(0, 8)}`;
  const initiation = {
    InstructionIdentification: ref,
    EndToEndIdentification: ref,
    InstructedAmount: { Amount: amount, Currency: 'GBP' },
    CreditorAccount: { SchemeName: creditor.SchemeName, Identification: creditor.Identification, Name: 'Bob' },
  };
  let res = await api(ccToken, dpop, 'POST', '/open-banking/v3.1/pisp/domestic-payment-consents',
    { Data: { Initiation: initiation }, Risk: {} });
  expectStatus('create payment consent', res, 201);
  const consentID = res.body.Data.ConsentId;
  if (res.body.Data.Status !== 'AwaitingAuthorisation') fail(`consent status ${res.body.Data.Status}`);
  detail(`consent ${consentID}: ${res.body.Data.Status}`);

  step('alice authorises the payment (PAR with authorization_details, psu and debtor_account pushed)');
  const payToken = await authorize(as, client, auth, dpop, 'payments', consentID, 'alice', alice.account.AccountId);

  step('domestic payment with alice\'s token');
  res = await api(payToken, dpop, 'POST', '/open-banking/v3.1/pisp/domestic-payments',
    { Data: { ConsentId: consentID, Initiation: initiation }, Risk: {} });
  expectStatus('create payment', res, 201);
  const paymentID = res.body.Data.DomesticPaymentId;
  detail(`payment ${paymentID}: ${res.body.Data.Status}`);

  step('read the payment back');
  res = await api(payToken, dpop, 'GET', `/open-banking/v3.1/pisp/domestic-payments/${paymentID}`);
  expectStatus('get payment', res, 200);
  const booked = ['AcceptedCreditSettlementCompleted', 'AcceptedSettlementCompleted'];
  if (!booked.includes(res.body.Data.Status)) fail(`payment status ${res.body.Data.Status}, want booked`);
  console.log(`payment ${res.body.Data.DomesticPaymentId}: ${res.body.Data.Status}`);

  step('alice\'s balance read back');
  const after = await interimBooked(alice.token, dpop, alice.account.AccountId);
  detail(`alice's InterimBooked balance: ${after}`);
  if (cents(before) - cents(after) !== cents(amount)) fail(`alice's balance went from ${before} to ${after}, want ${amount} less`);

  console.log('fapi-sandbox: all steps passed');
}

main().catch((err) => {
  console.error(`fapi-sandbox: step ${stepNo} failed: ${err.message}`);
  if (err.cause) console.error(`  cause: ${JSON.stringify(err.cause)}`);
  process.exit(1);
});
