// A single-page app signing people in with authorization code + PKCE (RFC 7636), as a
// public client (OAuth 2.0 for Browser-Based Apps). No build step: a plain ES module.
//
// Tokens live in memory only (the `tokens` variable): a reload signs the person out
// of this app. sessionStorage holds only the PKCE verifier, state and nonce during
// the round trip to the authorization server, and they are removed on return.
// config.json (next to this file) names the issuer, client_id, scope and API.

const PENDING = "spa.pending-authorization";

let tokens = null; // { access_token, refresh_token, id_token, claims } — never stored
let config = null;
let metadata = null;

const $ = (id) => document.getElementById(id);

function show(state, message = "") {
  $("signed-out").hidden = state !== "signed-out";
  $("signed-in").hidden = state !== "signed-in";
  $("status").textContent = message;
}

function fail(error) {
  $("error").hidden = false;
  $("error").textContent = `Error: ${error.message || error}`;
  show("signed-out", "Not signed in.");
}

function base64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function getJSON(url, options = {}) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${url}: ${body.error || response.status} ${body.error_description || ""}`);
  }
  return body;
}

function redirectUri() {
  return window.location.origin + window.location.pathname;
}

// RFC 7636 section 4.1-4.2: a high-entropy verifier and its S256 challenge.
async function pkcePair() {
  const verifier = randomString(32);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url(digest) };
}

// OpenID Connect Core section 3.1.2.1: send the browser to the authorization endpoint.
async function signIn() {
  const { verifier, challenge } = await pkcePair();
  const pending = { verifier, state: randomString(16), nonce: randomString(16) };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  window.location.assign(`${metadata.authorization_endpoint}?${params}`);
}

// RFC 6749 section 4.1.2 and 4.1.3: check state, then exchange the code with the verifier.
async function finishSignIn(params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  // Take the code out of the address bar and history.
  window.history.replaceState(null, "", redirectUri());
  if (!pending || params.get("state") !== pending.state) throw new Error("unexpected state");
  if (params.get("error")) throw new Error(params.get("error_description") || params.get("error"));
  const body = await getJSON(metadata.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const claims = await verifyIdToken(body.id_token, pending.nonce);
  tokens = { ...body, claims };
}

const ALGORITHMS = {
  RS256: { importAs: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verifyAs: { name: "RSASSA-PKCS1-v1_5" } },
  ES256: { importAs: { name: "ECDSA", namedCurve: "P-256" }, verifyAs: { name: "ECDSA", hash: "SHA-256" } },
};

// Core section 3.1.3.7: signature with the issuer's JWKS, then iss, aud, exp and nonce.
async function verifyIdToken(idToken, nonce) {
  const [head, payload, signature] = idToken.split(".");
  const header = JSON.parse(new TextDecoder().decode(fromBase64url(head)));
  const algorithm = ALGORITHMS[header.alg];
  if (!algorithm) throw new Error(`unexpected id_token alg ${header.alg}`);
  const jwks = await getJSON(metadata.jwks_uri);
  const jwk = jwks.keys.find((key) => key.kid === header.kid);
  if (!jwk) throw new Error("id_token signed by an unknown key");
  const key = await crypto.subtle.importKey("jwk", jwk, algorithm.importAs, false, ["verify"]);
  const valid = await crypto.subtle.verify(
    algorithm.verifyAs, key, fromBase64url(signature), new TextEncoder().encode(`${head}.${payload}`),
  );
  if (!valid) throw new Error("id_token signature is invalid");
  const claims = JSON.parse(new TextDecoder().decode(fromBase64url(payload)));
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.iss !== metadata.issuer) throw new Error("id_token from another issuer");
  if (!audiences.includes(config.client_id)) throw new Error("id_token for another client");
  if (claims.exp * 1000 < Date.now()) throw new Error("id_token expired");
  if (claims.nonce !== nonce) throw new Error("id_token nonce mismatch");
  return claims;
}

function bearer() {
  return { Authorization: `Bearer ${tokens.access_token}` };
}

// Both calls send an Authorization header: cross-origin, the browser preflights them.
async function showSignedIn() {
  const person = await getJSON(metadata.userinfo_endpoint, { headers: bearer() });
  if (person.sub !== tokens.claims.sub) throw new Error("userinfo is about someone else");
  const notes = await getJSON(`${config.api}/notes`, { headers: bearer() });
  $("name").textContent = person.name || person.sub;
  $("sub").textContent = person.sub;
  $("notes").replaceChildren(
    ...notes.notes.map((text) => Object.assign(document.createElement("li"), { textContent: text })),
  );
  show("signed-in", "Signed in.");
}

// RFC 7009: revoke what we hold, then forget it.
async function signOut() {
  const held = tokens;
  tokens = null;
  if (held) {
    for (const [token, hint] of [[held.refresh_token, "refresh_token"], [held.access_token, "access_token"]]) {
      if (!token) continue;
      await fetch(metadata.revocation_endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token, token_type_hint: hint, client_id: config.client_id }),
      });
    }
  }
  show("signed-out", "Signed out.");
}

async function start() {
  config = await getJSON("config.json");
  metadata = await getJSON(`${config.issuer}/.well-known/openid-configuration`);
  if (metadata.issuer !== config.issuer) throw new Error("discovery names another issuer");
  $("sign-in").addEventListener("click", () => signIn().catch(fail));
  $("sign-out").addEventListener("click", () => signOut().catch(fail));
  const params = new URLSearchParams(window.location.search);
  if (params.has("code") || params.has("error")) {
    await finishSignIn(params);
    await showSignedIn();
  } else {
    show("signed-out", "Not signed in.");
  }
}

start().catch(fail);
