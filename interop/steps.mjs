// steps.mjs holds what both interop aggregators need: printing their
// steps, the one retry a DPoP nonce challenge calls for, the authorization
// code flow with PAR, and calls to the payments service with a DPoP-bound
// token.
import { randomUUID } from 'node:crypto';

import * as oauth from 'oauth4webapi';

// The servers listen on loopback HTTP in these tests only.
export const insecure = { [oauth.allowInsecureRequests]: true };

let stepNo = 0;
export function step(what) {
  stepNo++;
  console.log(`step ${stepNo}: ${what}`);
}
export function detail(what) {
  console.log(`  ${what}`);
}
export function fail(what) {
  throw new Error(what);
}

// withNonceRetry sends a request and, when the server asks for a DPoP nonce
// (RFC 9449 §8 at the AS, §9 at the resource server), sends it once more: the
// DPoP handle has cached the nonce from the DPoP-Nonce header.
export async function withNonceRetry(label, send) {
  try {
    return await send();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) {
      throw err;
    }
    detail(`${label}: use_dpop_nonce, signing a new proof with the server's nonce`);
    return send();
  }
}

// authorizationCodeFlow runs the FAPI 2.0 authorization code flow for the
// client (authenticated by auth, DPoP-bound through dpop): PAR with PKCE,
// state, scope and the request parameters extra, then customerAuthorizes(url)
// (which follows the authorization URL as the customer would and returns the
// callback URL), the RFC 9207 iss and state checks, and the code exchange. It
// returns the token response, whose token_type it checks is DPoP.
export async function authorizationCodeFlow(as, client, auth, dpop, redirectURI, scope, extra, customerAuthorizes) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const params = {
    response_type: 'code',
    redirect_uri: redirectURI,
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  };
  const par = await withNonceRetry('PAR endpoint', async () => {
    const res = await oauth.pushedAuthorizationRequest(as, client, auth, params, { DPoP: dpop, ...insecure });
    return oauth.processPushedAuthorizationResponse(as, client, res);
  });
  detail(`PAR: request_uri received, expires in ${par.expires_in}s`);

  const authURL = new URL(as.authorization_endpoint);
  authURL.searchParams.set('client_id', client.client_id);
  authURL.searchParams.set('request_uri', par.request_uri);
  const callback = await customerAuthorizes(authURL);
  // RFC 9207: validateAuthResponse checks iss against the discovered issuer
  // (the metadata announces the parameter), and the state.
  const callbackParams = oauth.validateAuthResponse(as, client, callback, state);
  detail('authorization response: code received, state and iss checked');

  const tokens = await withNonceRetry('token endpoint', async () => {
    const res = await oauth.authorizationCodeGrantRequest(as, client, auth, callbackParams, redirectURI, verifier,
      { DPoP: dpop, ...insecure });
    return oauth.processAuthorizationCodeResponse(as, client, res);
  });
  if (tokens.token_type.toLowerCase() !== 'dpop') fail(`token endpoint: token_type ${tokens.token_type}, want DPoP`);
  return tokens;
}

// apiCaller returns api(token, dpop, method, path, body, idempotent), which
// calls the payments service at apiBase with a DPoP-bound token; idempotent
// sends a new x-idempotency-key (the same one on the nonce retry).
export function apiCaller(apiBase) {
  return async function api(token, dpop, method, path, body, idempotent) {
    const url = new URL(path, apiBase);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const idempotencyKey = idempotent ? randomUUID() : undefined;
    const res = await withNonceRetry(`${method} ${url.pathname}`, () => {
      const headers = new Headers({ accept: 'application/json', 'x-fapi-interaction-id': randomUUID() });
      if (payload !== undefined) headers.set('content-type', 'application/json');
      // The same key on the retry: the first attempt was refused before any work.
      if (idempotencyKey) headers.set('x-idempotency-key', idempotencyKey);
      return oauth.protectedResourceRequest(token, method, url, headers, payload, { DPoP: dpop, ...insecure });
    });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, body: json, text };
  };
}

export function expectStatus(what, res, want) {
  if (res.status !== want) {
    fail(`${what}: HTTP ${res.status}, want ${want}: ${res.text}`);
  }
  detail(`${what}: HTTP ${res.status}`);
}
