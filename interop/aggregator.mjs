// aggregator.mjs plays an Open Banking aggregator built on panva's
// oauth4webapi, configured the FAPI 2.0 way: AS metadata discovery
// (RFC 8414), pushed authorization requests (RFC 9126), private_key_jwt
// client authentication (RFC 7523), PKCE S256 (RFC 7636), DPoP-bound tokens
// (RFC 9449) and the authorization response's iss check (RFC 9207). It also
// plays the bank's back office (opening accounts, recording the customer's
// decision) with its own client, and the customer at the login page.
//
// It runs one payment and one account read against the payments service and
// prints each step; any unexpected answer ends it with exit status 1.
//
// Environment (all set by integration/interop_test.go):
//   INTEROP_ISSUER                 the authorization server (as.mjs)
//   INTEROP_API                    the payments service's base URL
//   INTEROP_AGGREGATOR_PRIVATE_JWK the aggregator's private JWK (JSON, with kid)
//   INTEROP_ADMIN_SECRET           the back office's client secret
//   INTEROP_CONSENT_CLAIM          consent_id, openbanking_intent_id or
//                                  authorization_details: how the consent id
//                                  is sent to the AS
import { randomUUID } from 'node:crypto';

import * as oauth from 'oauth4webapi';

import { apiCaller, authorizationCodeFlow, detail, expectStatus, fail, insecure, step, withNonceRetry } from './steps.mjs';

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is required`);
  }
  return v;
}

const issuer = new URL(required('INTEROP_ISSUER'));
const apiBase = required('INTEROP_API');
const consentClaim = process.env.INTEROP_CONSENT_CLAIM || 'consent_id';
const redirectURI = 'http://127.0.0.1/callback';
const api = apiCaller(apiBase);

async function discover() {
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
  return oauth.processDiscoveryResponse(issuer, res);
}

async function clientCredentials(as, client, auth, dpop, scope) {
  return withNonceRetry('token endpoint', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope }, { DPoP: dpop, ...insecure });
    return oauth.processClientCredentialsResponse(as, client, res);
  });
}

// api calls the payments service with a DPoP-bound token; the first call of
// each key meets the service's nonce dance.

// cookieJar keeps the AS's session and interaction cookies for the customer's
// browser. The flow is sequential, so the latest cookie of each name wins.
class CookieJar {
  #cookies = new Map();

  store(res) {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

// customerAuthorizes plays the customer's browser: from the authorization
// URL through the login and consent prompts to the redirect back to the
// aggregator, which it returns.
async function customerAuthorizes(authorizationURL, psu) {
  const jar = new CookieJar();
  let url = authorizationURL;
  let method = 'GET';
  let body;
  for (let hops = 0; hops < 20; hops++) {
    if (url.href.startsWith(redirectURI)) {
      return url;
    }
    const headers = { cookie: jar.header(), accept: 'application/json' };
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    jar.store(res);
    method = 'GET';
    body = undefined;
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url);
      continue;
    }
    const text = await res.text();
    if (res.status !== 200 || !url.pathname.startsWith('/interaction/')) {
      fail(`authorization: ${url.pathname}: HTTP ${res.status}: ${text}`);
    }
    const page = JSON.parse(text);
    if (page.prompt === 'login') {
      detail(`login page: signing in as ${psu}`);
      url = new URL(`/interaction/${page.uid}/login`, url);
      method = 'POST';
      body = new URLSearchParams({ login: psu }).toString();
    } else if (page.prompt === 'consent') {
      detail(`consent page: approving scope "${page.scope}" for ${page.client_id}`);
      url = new URL(`/interaction/${page.uid}/confirm`, url);
      method = 'POST';
      body = '';
    } else {
      fail(`authorization: unexpected prompt ${page.prompt}`);
    }
  }
  return fail('authorization: too many redirects');
}

// consentParameters names the consent in the authorization request the way
// the configured AS expects it.
function consentParameters(consentID) {
  if (consentClaim === 'authorization_details') {
    // RFC 9396 §2: the consent as an authorization details object.
    return {
      authorization_details: JSON.stringify([{ type: 'openbanking_intent', openbanking_intent_id: consentID }]),
    };
  }
  return { consent_id: consentID };
}

// describeToken says what kind of access token the AS issued, never the
// token itself: an RFC 9068 JWT (its typ and whether cnf.jkt binds it to the
// DPoP key) or an opaque string.
function describeToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) {
    return ', opaque access token';
  }
  const decode = (p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  const header = decode(parts[0]);
  const claims = decode(parts[1]);
  return `, JWT access token (typ ${header.typ}, alg ${header.alg}, cnf.jkt ${claims.cnf?.jkt ? 'present' : 'MISSING'})`;
}

// authorizationCode runs PAR, the customer's authorization and the code
// exchange, returning a DPoP-bound token for the consent.
async function authorizationCode(as, client, auth, dpop, scope, consentID, psu) {
  const tokens = await authorizationCodeFlow(as, client, auth, dpop, redirectURI, scope, consentParameters(consentID),
    (authURL) => customerAuthorizes(authURL, psu));
  detail(`token: token_type ${tokens.token_type}, scope "${tokens.scope}"` +
    (tokens.authorization_details ? `, authorization_details ${JSON.stringify(tokens.authorization_details)}` : '') +
    describeToken(tokens.access_token));
  return tokens.access_token;
}

async function main() {
  step(`discover the authorization server ${issuer.href}`);
  const as = await discover();
  for (const m of ['pushed_authorization_request_endpoint', 'token_endpoint', 'authorization_endpoint']) {
    if (!as[m]) fail(`metadata: no ${m}`);
  }
  if (!as.authorization_response_iss_parameter_supported) fail('metadata: no RFC 9207 iss parameter');
  detail(`require_pushed_authorization_requests=${as.require_pushed_authorization_requests}, ` +
    `dpop_signing_alg_values_supported=${as.dpop_signing_alg_values_supported}`);

  const jwk = JSON.parse(required('INTEROP_AGGREGATOR_PRIVATE_JWK'));
  const signingKey = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const client = { client_id: 'aggregator', token_endpoint_auth_signing_alg: 'ES256' };
  const clientAuth = oauth.PrivateKeyJwt({ key: signingKey, kid: jwk.kid });
  const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));

  const admin = { client_id: 'back-office' };
  const adminAuth = oauth.ClientSecretBasic(required('INTEROP_ADMIN_SECRET'));
  const adminDPoP = oauth.DPoP(admin, await oauth.generateKeyPair('ES256'));

  step('back office: client credentials token (ledger:admin consents:admin), DPoP-bound');
  const adminToken = (await clientCredentials(as, admin, adminAuth, adminDPoP, 'ledger:admin consents:admin')).access_token;
  detail(`token${describeToken(adminToken)}`);

  const suffix = randomUUID().slice(0, 8);
  const alice = `alice-${suffix}`;
  const bob = `bob-${suffix}`;
  step(`back office: open accounts for ${alice} (100.00 GBP) and ${bob}`);
  let res = await api(adminToken, adminDPoP, 'POST', '/internal/v1/accounts',
    { Owner: alice, Currency: 'GBP', Nickname: 'Alice', OpeningBalance: '100.00' });
  expectStatus('open debtor account', res, 201);
  const debtor = res.body;
  res = await api(adminToken, adminDPoP, 'POST', '/internal/v1/accounts', { Owner: bob, Currency: 'GBP', Nickname: 'Bob' });
  expectStatus('open creditor account', res, 201);
  const creditor = res.body;

  step('aggregator: client credentials token (payments), private_key_jwt, DPoP-bound');
  const ccToken = (await clientCredentials(as, client, clientAuth, dpop, 'payments')).access_token;

  step('aggregator: payment consent');
  const initiation = {
    InstructionIdentification: `interop-${suffix}`,
    EndToEndIdentification: `interop-${suffix}`,
    InstructedAmount: { Amount: '25.00', Currency: 'GBP' },
    CreditorAccount: {
      SchemeName: 'UK.OBIE.SortCodeAccountNumber',
      Identification: creditor.Account[0].Identification,
      Name: 'Bob',
    },
  };
  res = await api(ccToken, dpop, 'POST', '/open-banking/v3.1/pisp/domestic-payment-consents',
    { Data: { Initiation: initiation }, Risk: {} }, true);
  expectStatus('create payment consent', res, 201);
  const paymentConsent = res.body.Data.ConsentId;
  if (res.body.Data.Status !== 'AwaitingAuthorisation') fail(`consent status ${res.body.Data.Status}`);
  detail(`consent ${paymentConsent}: ${res.body.Data.Status}`);

  step(`back office: ${alice} authorises the payment consent from ${debtor.AccountId}`);
  res = await api(adminToken, adminDPoP, 'POST', `/internal/v1/consents/${paymentConsent}/authorise`,
    { Psu: alice, DebtorAccount: debtor.AccountId });
  expectStatus('authorise payment consent', res, 200);

  step(`aggregator: PAR + authorization code for ${alice}, consent as ${consentClaim}`);
  const payToken = await authorizationCode(as, client, clientAuth, dpop, 'payments', paymentConsent, alice);

  step('aggregator: domestic payment with the customer token');
  res = await api(payToken, dpop, 'POST', '/open-banking/v3.1/pisp/domestic-payments',
    { Data: { ConsentId: paymentConsent, Initiation: initiation }, Risk: {} }, true);
  expectStatus('create payment', res, 201);
  const paymentID = res.body.Data.DomesticPaymentId;
  detail(`payment ${paymentID}: ${res.body.Data.Status}`);
  if (res.body.Data.Status !== 'AcceptedCreditSettlementCompleted') fail(`payment status ${res.body.Data.Status}`);

  step('aggregator: read the payment back');
  res = await api(payToken, dpop, 'GET', `/open-banking/v3.1/pisp/domestic-payments/${paymentID}`);
  expectStatus('get payment', res, 200);
  detail(`payment ${res.body.Data.DomesticPaymentId}: ${res.body.Data.Status}`);

  step('aggregator: client credentials token (accounts) and account-access consent');
  const aisToken = (await clientCredentials(as, client, clientAuth, dpop, 'accounts')).access_token;
  res = await api(aisToken, dpop, 'POST', '/open-banking/v3.1/aisp/account-access-consents',
    { Data: { Permissions: ['ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances'] }, Risk: {} }, true);
  expectStatus('create account-access consent', res, 201);
  const accessConsent = res.body.Data.ConsentId;
  detail(`consent ${accessConsent}: ${res.body.Data.Status}`);

  step(`back office: ${alice} authorises the account-access consent`);
  res = await api(adminToken, adminDPoP, 'POST', `/internal/v1/consents/${accessConsent}/authorise`, { Psu: alice });
  expectStatus('authorise account-access consent', res, 200);

  step(`aggregator: PAR + authorization code for ${alice}, accounts`);
  const readToken = await authorizationCode(as, client, clientAuth, dpop, 'accounts', accessConsent, alice);

  step('aggregator: accounts and balances');
  res = await api(readToken, dpop, 'GET', '/open-banking/v3.1/aisp/accounts');
  expectStatus('list accounts', res, 200);
  const ids = res.body.Data.Account.map((a) => a.AccountId);
  if (ids.length !== 1 || ids[0] !== debtor.AccountId) fail(`accounts ${JSON.stringify(ids)}, want [${debtor.AccountId}]`);
  detail(`accounts: ${ids.join(', ')}`);
  res = await api(readToken, dpop, 'GET', `/open-banking/v3.1/aisp/accounts/${debtor.AccountId}/balances`);
  expectStatus('balances', res, 200);
  const balances = Object.fromEntries(res.body.Data.Balance.map((b) => [b.Type, b.Amount.Amount]));
  detail(`balances: ${JSON.stringify(balances)}`);
  if (balances.InterimBooked !== '75.00') fail(`InterimBooked ${balances.InterimBooked}, want 75.00`);

  console.log('interop: all steps passed');
}

main().catch((err) => {
  console.error(`interop: step ${stepNo} failed: ${err.message}`);
  if (err.cause) console.error(`  cause: ${JSON.stringify(err.cause)}`);
  process.exit(1);
});
