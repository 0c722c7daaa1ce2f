// steps.mjs holds what both interop aggregators need: printing their
// steps, the one retry a DPoP nonce challenge calls for, and calls to the
// payments service with a DPoP-bound token.
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
