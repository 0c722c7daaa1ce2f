// as.mjs runs panva's oidc-provider (a FAPI 2.0 certified authorization
// server) configured the way a bank would configure it in front of the
// payments service: PAR required, PKCE S256, DPoP-bound access tokens
// (RFC 9449), private_key_jwt client authentication (RFC 7523) for the
// aggregator, and RFC 7662 introspection for the resource server.
//
// Environment (all set by integration/interop_test.go):
//   INTEROP_AS_PORT         loopback port to listen on (required)
//   INTEROP_RESOURCE        the payments service's base URL: the resource
//                           indicator (RFC 8707) and audience of its tokens
//   INTEROP_CONSENT_CLAIM   where the consent id goes: consent_id (default),
//                           openbanking_intent_id, or authorization_details
//                           (RFC 9396, type openbanking_intent)
//   INTEROP_ACCESS_TOKENS   opaque (default) or jwt (RFC 9068)
//   INTEROP_AGGREGATOR_JWK  the aggregator's public JWK (JSON)
//   INTEROP_RS_AUTH         payments-rs introspection client authentication:
//                           client_secret_basic (default) or private_key_jwt
//   INTEROP_RS_JWK          payments-rs's public JWK (JSON), for private_key_jwt
//   INTEROP_RS_SECRET       payments-rs's client secret
//   INTEROP_ADMIN_SECRET    the back office's client secret
//
// Login and consent are a small JSON/form interaction under /interaction/
// that aggregator.mjs drives over HTTP, standing in for the bank's login page.
// Ready line on stdout: "interop-as ready <issuer>".
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`as.mjs: ${name} is required`);
    process.exit(2);
  }
  return v;
}

const port = Number(required('INTEROP_AS_PORT'));
const resource = required('INTEROP_RESOURCE');
const consentClaim = process.env.INTEROP_CONSENT_CLAIM || 'consent_id';
const tokenFormat = process.env.INTEROP_ACCESS_TOKENS || 'opaque';
const rsAuth = process.env.INTEROP_RS_AUTH || 'client_secret_basic';
const issuer = `http://127.0.0.1:${port}`;

if (!['consent_id', 'openbanking_intent_id', 'authorization_details'].includes(consentClaim)) {
  console.error(`as.mjs: INTEROP_CONSENT_CLAIM=${consentClaim} is not supported`);
  process.exit(2);
}
if (!['opaque', 'jwt'].includes(tokenFormat)) {
  console.error(`as.mjs: INTEROP_ACCESS_TOKENS=${tokenFormat} is not supported`);
  process.exit(2);
}

const aggregatorScopes = 'accounts payments';
const adminScopes = 'ledger:admin consents:admin';
const allScopes = `${aggregatorScopes} ${adminScopes}`;

// The AS's own signing key (JWT access tokens, RFC 9068 §2.1: asymmetric).
const signingKey = {
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  kid: 'interop-as-es256',
  alg: 'ES256',
  use: 'sig',
};

const rsClient = {
  client_id: 'payments-rs',
  grant_types: [],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: rsAuth,
  introspection_endpoint_auth_method: rsAuth,
};
if (rsAuth === 'private_key_jwt') {
  rsClient.jwks = { keys: [JSON.parse(required('INTEROP_RS_JWK'))] };
  rsClient.token_endpoint_auth_signing_alg = 'ES256';
  rsClient.introspection_endpoint_auth_signing_alg = 'ES256';
} else {
  rsClient.client_secret = required('INTEROP_RS_SECRET');
}

const clients = [
  {
    // The aggregator (TPP): FAPI 2.0 security profile, confidential client.
    client_id: 'aggregator',
    grant_types: ['authorization_code', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: aggregatorScopes,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [JSON.parse(required('INTEROP_AGGREGATOR_JWK'))] },
    require_pushed_authorization_requests: true,
    dpop_bound_access_tokens: true,
    ...(consentClaim === 'authorization_details' ? { authorization_details_types: ['openbanking_intent'] } : {}),
  },
  {
    // The bank's back office: opens accounts, records the customer's decision.
    client_id: 'back-office',
    client_secret: required('INTEROP_ADMIN_SECRET'),
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: adminScopes,
    token_endpoint_auth_method: 'client_secret_basic',
    dpop_bound_access_tokens: true,
  },
  rsClient,
];

// consentByGrant remembers which consent the customer approved in which grant,
// so the tokens issued from that grant carry it. A real AS keeps this in its
// consent store.
const consentByGrant = new Map();

const configuration = {
  clients,
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [signingKey] },
  cookies: { keys: ['interop-cookie-key-not-secret-0123456789'] },
  pkce: { required: () => true },
  clientAuthMethods: ['private_key_jwt', 'client_secret_basic'],
  enabledJWA: {
    clientAuthSigningAlgValues: ['ES256', 'PS256', 'EdDSA'],
    dPoPSigningAlgValues: ['ES256', 'EdDSA'],
  },
  scopes: ['openid', 'offline_access', ...allScopes.split(' ')],
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  extraParams: consentClaim === 'authorization_details' ? [] : ['consent_id'],
  features: {
    devInteractions: { enabled: false },
    fapi: { enabled: true, profile: '2.0' },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
    dPoP: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Only the resource server may introspect (RFC 7662 §2.1). With JWT
      // access tokens every answer is inactive, so a passing run shows that
      // the service validated the tokens itself (RFC 9068 §4).
      allowedPolicy: async (_ctx, client) => client.clientId === 'payments-rs' && tokenFormat !== 'jwt',
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: allScopes,
          audience: resource,
          accessTokenTTL: 600,
          accessTokenFormat: tokenFormat,
          ...(tokenFormat === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}),
        };
      },
    },
    richAuthorizationRequests: {
      enabled: consentClaim === 'authorization_details',
      types: {
        openbanking_intent: {
          validate: async (_ctx, detail) => {
            if (typeof detail.openbanking_intent_id !== 'string' || detail.openbanking_intent_id === '') {
              throw new Provider.errors.InvalidAuthorizationDetails('openbanking_intent_id is required');
            }
          },
        },
      },
      authorizationDetailsForGrantSource: async (ctx) => ctx.oidc.grant.rar,
      authorizationDetailsForAccessToken: async (_ctx, _token, source) => source?.rar,
      authorizationDetailsForIntrospection: async (_ctx, token) => token.rar,
    },
  },
  extraTokenClaims: async (_ctx, token) => {
    const consent = token.grantId ? consentByGrant.get(token.grantId) : undefined;
    if (!consent || consentClaim === 'authorization_details') {
      return undefined;
    }
    return { [consentClaim]: consent };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('as.mjs server_error:', err));

async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

// interaction is the bank's login and consent page, reduced to what a script
// can drive: GET tells the prompt, POST .../login signs the customer in,
// POST .../confirm approves what the aggregator asked for.
async function interaction(req, res) {
  const url = new URL(req.url, issuer);
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    return json(res, 400, { error: 'interaction mismatch' });
  }
  if (req.method === 'GET' && !action) {
    return json(res, 200, { uid, prompt: details.prompt.name, client_id: details.params.client_id, scope: details.params.scope });
  }
  if (req.method === 'POST' && action === 'login' && details.prompt.name === 'login') {
    const login = (await readForm(req)).get('login');
    if (!login) {
      return json(res, 400, { error: 'login is required' });
    }
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm' && details.prompt.name === 'consent') {
    const { prompt: { details: missing }, params, session: { accountId } } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    if (missing.rar) {
      for (const detail of missing.rar) grant.addRar(detail);
    }
    const grantId = await grant.save();
    if (params.consent_id) {
      consentByGrant.set(grantId, params.consent_id);
    }
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return json(res, 400, { error: `cannot ${req.method} ${action || ''} at prompt ${details.prompt.name}` });
}

const callback = provider.callback();
const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('as.mjs interaction:', err.message);
      if (!res.headersSent) json(res, 400, { error: err.name, error_description: err.message });
    });
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`interop-as ready ${issuer} (consent as ${consentClaim}, ${tokenFormat} access tokens, introspection by ${rsAuth})`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
