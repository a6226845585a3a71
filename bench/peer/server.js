// node-oidc-provider set up to do the same work as authserver, the peer of `make bench`.
//
// Environment:
//   PEER_PORT     port on 127.0.0.1 (default 3000); the issuer is http://127.0.0.1:PORT
//   PEER_WORKERS  processes; N > 1 runs a node `cluster` of N workers sharing the port
//   PEER_ALG      ES256 or RS256: the signature of JWT access tokens (id_tokens are RS256)
//   REDIS_URL     storage shared by the workers (default redis://127.0.0.1:6379/0)
//   PEER_PREFIX   Redis key prefix, flushed when the server starts (default "bench:peer:")
// Prints "ready" on stdout once every worker listens.
import * as crypto from 'node:crypto';
import cluster from 'node:cluster';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

import redisAdapter, { flushPrefix } from './redis_adapter.js';

const PORT = Number.parseInt(process.env.PEER_PORT ?? '3000', 10);
const WORKERS = Number.parseInt(process.env.PEER_WORKERS ?? '1', 10);
const ALG = process.env.PEER_ALG ?? 'ES256';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const PREFIX = process.env.PEER_PREFIX ?? 'bench:peer:';
const ISSUER = `http://127.0.0.1:${PORT}`;

const API = 'https://api.bench.example';
const API_SCOPES = new Set(['read', 'write']);
// oidc-provider refuses to introspect or revoke JWTs (unsupported_token_type), so the same
// API under a second name gets opaque tokens: the ones the introspection benchmark uses.
const OPAQUE_API = 'https://opaque.api.bench.example';
const ACCOUNT = {
  sub: 'bench-user',
  email: 'bench-user@bench.example',
  email_verified: true,
  name: 'Bench User',
};
const CLIENT = {
  client_id: 'bench-client',
  client_secret: 'bench-secret-0123456789abcdef0123456789abcdef',
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1:9/callback'],
  // oidc-provider's client `scope` lists OpenID scopes only; the API's "read write" are
  // the client's through getResourceServerInfo.
  scope: 'openid profile email offline_access',
};

if (!['ES256', 'RS256'].includes(ALG)) {
  throw new Error(`PEER_ALG must be ES256 or RS256, not ${ALG}`);
}

/** One P-256 and one RSA 2048 signing key, and a cookie key: made once, by the primary. */
function makeSecrets() {
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return {
    keys: [
      { ...ec.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' },
      { ...rsa.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' },
    ],
    cookieKey: crypto.randomBytes(32).toString('base64url'),
  };
}

/** RFC 8707: a request naming an API scope is for the API; OpenID-only ones are for userinfo. */
async function defaultResource(ctx, _client, oneOf) {
  if (oneOf) {
    return oneOf;
  }
  if (ctx.oidc.route === 'token' && ctx.oidc.params.grant_type === 'client_credentials') {
    return API;
  }
  const scopes = ctx.oidc.params.scope?.split(' ') ?? [];
  return scopes.some((scope) => API_SCOPES.has(scope)) ? API : undefined;
}

/** RFC 9068 JWT access tokens for the API, signed with PEER_ALG; opaque ones on request. */
async function getResourceServerInfo(_ctx, resourceIndicator) {
  if (resourceIndicator === API) {
    return {
      scope: 'read write',
      accessTokenFormat: 'jwt',
      accessTokenTTL: 900,
      jwt: { sign: { alg: ALG } },
    };
  }
  if (resourceIndicator === OPAQUE_API) {
    return { scope: 'read write', accessTokenFormat: 'opaque', accessTokenTTL: 900 };
  }
  throw new errors.InvalidTarget();
}

function configuration({ keys, cookieKey }) {
  return {
    adapter: redisAdapter({ url: REDIS_URL, keyPrefix: PREFIX }),
    clients: [CLIENT],
    jwks: { keys },
    cookies: { keys: [cookieKey] },
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource,
        getResourceServerInfo,
        // The code and refresh grants keep the API the authorization request named.
        useGrantedResource: () => true,
      },
    },
    async findAccount(_ctx, sub) {
      if (sub !== ACCOUNT.sub) {
        return undefined;
      }
      return { accountId: sub, claims: () => ({ ...ACCOUNT }) };
    },
    // authserver issues a refresh token whenever the client may use one. oidc-provider drops
    // offline_access from every authorization request without prompt=consent (an
    // interaction each time), so the granted scope cannot decide here.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // authserver's tokens live out their TTL; none ends with the browser session.
    expiresWithSession: () => false,
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 900,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 900,
      IdToken: 900,
      AuthorizationCode: 60,
      RefreshToken: 30 * 24 * 60 * 60,
      Interaction: 60 * 60,
      Session: 14 * 24 * 60 * 60,
      // A grant outlives its refresh tokens: they die with it.
      Grant: 31 * 24 * 60 * 60,
    },
  };
}

/** Benchmark only: sign in as bench-user, then grant whatever was asked, without a page. */
async function interaction(provider, req, res) {
  const { prompt, params, session, grantId } = await provider.interactionDetails(req, res);
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: ACCOUNT.sub } };
  } else {
    // The session's grant may be gone: a replayed refresh token revokes its whole grant.
    const grant = (grantId && await provider.Grant.find(grantId))
      || new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) {
      grant.addOIDCScope(missingOIDCScope.join(' '));
    }
    if (missingOIDCClaims) {
      grant.addOIDCClaims(missingOIDCClaims);
    }
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

/** Serve the issuer in this process; resolve once listening. */
function serve(secrets) {
  const provider = new Provider(ISSUER, configuration(secrets));
  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
      interaction(provider, req, res).catch((err) => {
        console.error(`interaction failed: ${err.message}`);
        res.statusCode = 500;
        res.end();
      });
      return;
    }
    callback(req, res);
  });
  return new Promise((resolve) => {
    server.listen(PORT, '127.0.0.1', resolve);
  });
}

if (cluster.isPrimary) {
  await flushPrefix(REDIS_URL, PREFIX);
  const secrets = makeSecrets();
  if (WORKERS <= 1) {
    await serve(secrets);
    console.log('ready');
  } else {
    // Every worker gets the same keys: a token signed by one verifies at any other.
    const env = { PEER_SECRETS: JSON.stringify(secrets) };
    let listening = 0;
    let ready = false;
    cluster.on('listening', () => {
      listening += 1;
      if (listening === WORKERS) {
        ready = true;
        console.log('ready');
      }
    });
    cluster.on('exit', (worker, code, signal) => {
      console.error(`worker ${worker.process.pid} exited (${signal ?? code})`);
      if (!ready) {
        process.exit(1);
      }
    });
    for (let i = 0; i < WORKERS; i += 1) {
      cluster.fork(env);
    }
  }
} else {
  const secrets = JSON.parse(process.env.PEER_SECRETS);
  delete process.env.PEER_SECRETS;
  await serve(secrets);
}
