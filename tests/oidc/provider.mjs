// The identity provider the token tests run against: oidc-provider (the
// certified Node.js OpenID provider) over HTTPS on a free loopback port,
// issuing JWT access tokens for the resource "livy-gateway" by client
// credentials (client `airflow`, acting as user svc-airflow) and by a user's
// login (authorization code flow, client `notebook`); and hostile tokens made
// with jose, the standard JOSE library.
//
//   node provider.mjs CERT KEY [PORT]
//
// Prints `= issuer <url>` once listening, then answers one command per line on
// standard input with one line on standard output, starting `= ` (the provider
// may print notices of its own between them):
//   client <id> <secret>   an access token by client credentials
//   user <name>            an access token after <name> logs in (any password)
//   authorize <url> <user> <redirect_uri>
//                          <user> logs in through the authorization request
//                          <url>; the redirect back to the client, unfollowed
//   register <id> <secret> <redirect_uri> <post_logout_uri>
//                          a confidential web client for browser sign-in (the
//                          gateway's, once its port is known)
//   rotate                 a new signing key (new kid), the old one still published
//   retire                 only the newest key published
//   sign <user>            a good token for <user>, signed with the current key
//                          (as the provider signs its access tokens)
//   forge <kind> <user>    a hostile token: expired, wrong-aud, wrong-iss, none,
//                          hs256-public, unknown-kid, tampered, no-user, es256
//                          (a good token signed with the provider's EC key)
// Errors answer `= error <text>`. NODE_EXTRA_CA_CERTS must name the CA that signed
// CERT (the script fetches from itself).
import fs from 'node:fs';
import https from 'node:https';
import readline from 'node:readline';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const [certFile, keyFile, wantedPort] = process.argv.slice(2);
const AUDIENCE = 'livy-gateway';
const RESOURCE = 'https://livy-gateway.test/';
const REDIRECT = 'https://127.0.0.1/callback';
const USERS = {
  alice: ['livy-users'],
  bob: ['livy-users'],
  carol: ['livy-users', 'livy-admins'],
  eve: ['staff'],
};
const SERVICES = { airflow: { user: 'svc-airflow', groups: ['livy-users'] } };

let generation = 0;
async function signingKey(alg) {
  generation += 1;
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: `${alg.toLowerCase()}-${generation}`, alg, use: 'sig' };
}

// Web clients registered at run time (`register`).
const webClients = [];

function configuration(keys) {
  return {
    clients: [
      ...webClients,
      {
        client_id: 'airflow',
        client_secret: 'airflow-secret',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        client_id: 'notebook',
        client_secret: 'notebook-secret',
        grant_types: ['authorization_code'],
        redirect_uris: [REDIRECT],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys },
    async findAccount(_ctx, id) {
      if (!USERS[id]) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, preferred_username: id, groups: USERS[id] }),
      };
    },
    claims: { openid: ['sub'], profile: ['preferred_username', 'groups'] },
    pkce: { required: () => false },
    ttl: {
      AccessToken: 600,
      ClientCredentials: 600,
      Grant: 3600,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Web clients (browser sign-in) get opaque access tokens, good at the
        // userinfo endpoint; the others JWTs for the gateway's resource.
        defaultResource: (_ctx, client) => (
          webClients.some((c) => c.client_id === client.clientId) ? undefined : RESOURCE),
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'livy',
          audience: AUDIENCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    async extraTokenClaims(_ctx, token) {
      if (token.accountId && USERS[token.accountId]) {
        return { preferred_username: token.accountId, groups: USERS[token.accountId] };
      }
      const service = SERVICES[token.clientId];
      if (service && !token.accountId) {
        return { preferred_username: service.user, groups: service.groups };
      }
      return undefined;
    },
  };
}

const server = https.createServer({
  cert: fs.readFileSync(certFile),
  key: fs.readFileSync(keyFile),
});
await new Promise((done) => server.listen(Number(wantedPort || 0), '127.0.0.1', done));
const issuer = `https://127.0.0.1:${server.address().port}`;

// Published keys, newest (the signing one) first.
let rsaKeys = [await signingKey('RS256')];
const ecKey = await signingKey('ES256');
let provider;
function install() {
  provider = new Provider(issuer, configuration([...rsaKeys, ecKey]));
  server.removeAllListeners('request');
  server.on('request', provider.callback());
}
install();

async function post(path, form) {
  const response = await fetch(`${issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const body = await response.json();
  if (!body.access_token) throw new Error(JSON.stringify(body));
  return body.access_token;
}

// The authorization code flow, as a browser would go through it: from the
// authorization request `start` (a URL) to the redirect back to the client,
// whose URL is returned unfollowed.
async function authorize(start, user, redirect) {
  const jar = new Map();
  const go = async (url, init = {}) => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(new URL(url, issuer), {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers || {}), cookie },
    });
    for (const set of response.headers.getSetCookie()) {
      const [pair] = set.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response;
  };
  const form = (fields) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
  let response = await go(start);
  for (let step = 0; step < 10; step += 1) {
    const location = response.headers.get('location');
    if (!location) throw new Error(`no redirect at step ${step}: ${response.status}`);
    if (location.startsWith(redirect)) return location;
    if (new URL(location, issuer).pathname.startsWith('/interaction/')) {
      const page = await (await go(location)).text();
      const prompt = page.includes('name="login"') ? 'login' : 'consent';
      response = await go(location, form({ prompt, login: user, password: 'any' }));
    } else {
      response = await go(location);
    }
  }
  throw new Error('the login did not finish');
}

async function userToken(user) {
  const start = `/auth?${new URLSearchParams({
    client_id: 'notebook', response_type: 'code', scope: 'openid profile', redirect_uri: REDIRECT,
  })}`;
  const back = await authorize(start, user, REDIRECT);
  const code = new URL(back).searchParams.get('code');
  if (!code) throw new Error(back);
  return post('/token', {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT,
    client_id: 'notebook', client_secret: 'notebook-secret',
  });
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function forge(kind, user) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: issuer, aud: AUDIENCE, sub: user, preferred_username: user,
    groups: USERS[user] || [], iat: now, exp: now + 600,
  };
  const signer = rsaKeys[0];
  const sign = async (payload, jwk = signer, header = {}) => new jose.SignJWT(payload)
    .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'at+jwt', ...header })
    .sign(await jose.importJWK(jwk, jwk.alg));
  switch (kind) {
    case 'expired': return sign({ ...claims, iat: now - 7200, exp: now - 3600 });
    case 'wrong-aud': return sign({ ...claims, aud: 'another-service' });
    case 'wrong-iss': return sign({ ...claims, iss: 'https://idp.elsewhere.example' });
    case 'no-user': {
      const { sub, preferred_username: _u, ...rest } = claims;
      return sign(rest);
    }
    case 'none': return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    case 'hs256-public': {
      // The classic confusion: HMAC keyed with the provider's public key.
      const { d, p, q, dp, dq, qi, ...publicJwk } = signer;
      const pem = await jose.exportSPKI(await jose.importJWK(publicJwk, 'RS256'));
      return new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid: signer.kid, typ: 'JWT' })
        .sign(new TextEncoder().encode(pem));
    }
    case 'unknown-kid': {
      const stranger = await signingKey('RS256');
      return sign(claims, { ...stranger, kid: 'not-published' });
    }
    case 'tampered': {
      const good = await sign(claims);
      const [header, , signature] = good.split('.');
      return `${header}.${b64({ ...claims, preferred_username: 'carol', groups: USERS.carol })}.${signature}`;
    }
    case 'es256': return sign(claims, ecKey);
    case 'good': return sign(claims);
    default: throw new Error(`unknown kind ${kind}`);
  }
}

const commands = {
  client: ([id, secret]) => post('/token', {
    grant_type: 'client_credentials', client_id: id, client_secret: secret, scope: 'livy',
  }),
  user: ([name]) => userToken(name),
  authorize: ([url, user, redirect]) => authorize(url, user, redirect),
  register: async ([id, secret, redirect, postLogout]) => {
    webClients.push({
      client_id: id,
      client_secret: secret,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [redirect],
      post_logout_redirect_uris: [postLogout],
      token_endpoint_auth_method: 'client_secret_post',
    });
    install();
    return id;
  },
  rotate: async () => {
    rsaKeys = [await signingKey('RS256'), ...rsaKeys];
    install();
    return rsaKeys[0].kid;
  },
  retire: async () => {
    rsaKeys = rsaKeys.slice(0, 1);
    install();
    return rsaKeys[0].kid;
  },
  forge: ([kind, user]) => forge(kind, user),
  sign: ([user]) => forge('good', user),
};

console.log(`= issuer ${issuer}`);
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const [name, ...args] = line.trim().split(/\s+/);
  try {
    if (!commands[name]) throw new Error(`unknown command ${name}`);
    console.log(`= ${await commands[name](args)}`);
  } catch (error) {
    console.log(`= error ${String(error.message || error).replace(/\n/g, ' ')}`);
  }
}
server.close();
process.exit(0);
