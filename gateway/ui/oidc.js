// Sign-in with the organisation's identity provider ([ui.oidc], PROTOCOL.md
// 3.12): the OpenID Connect authorization code flow with PKCE (S256), the
// page a public client. The provider answers in the URL's fragment
// (response_mode=fragment), which a browser never sends, so neither the
// code nor the ID token reaches the gateway or its logs. The ID token is
// the bearer for every region, kept for this tab only (sessionStorage).

/** The sign-in under way: {verifier, state, nonce, redirect, token_endpoint, back}. */
const FLOW_KEY = "sonde.oidc.flow";
/** Set by an automatic sign-in until a feed works with its token: one attempt, never a loop. */
const AUTO_KEY = "sonde.oidc.auto";

/** What the sign-in button names: the issuer's host. */
export function issuerHost(cfg) {
  try {
    return new URL(cfg.issuer).host;
  } catch {
    return cfg.issuer;
  }
}

/** The page's own URL without query or fragment: the redirect_uri registered at the provider. */
export function redirectUri() {
  return location.origin + location.pathname;
}

function base64url(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** code_challenge for `verifier`: base64url(SHA-256(verifier)), RFC 7636 4.2. */
export async function challenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The provider's discovery document, checked: its issuer, endpoints, S256, and a token endpoint the CSP lets the page reach. */
async function discover(cfg) {
  const url = `${cfg.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  let r;
  try {
    r = await fetch(url, { credentials: "omit" });
  } catch (e) {
    throw new Error(`could not read ${url} (${e.message}): is the provider up, and does it let this page's origin read it (CORS)?`);
  }
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  const meta = await r.json();
  if (meta.issuer !== cfg.issuer) {
    throw new Error(`the discovery document names the issuer ${JSON.stringify(meta.issuer)}, not ${JSON.stringify(cfg.issuer)}`);
  }
  for (const key of ["authorization_endpoint", "token_endpoint"]) {
    if (typeof meta[key] !== "string") throw new Error(`the discovery document has no ${key}`);
  }
  const methods = meta.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes("S256")) throw new Error("the provider does not offer PKCE with S256");
  const allowed = [cfg.issuer, ...(cfg.connect_origins ?? [])].map((u) => new URL(u).origin);
  const tokenOrigin = new URL(meta.token_endpoint).origin;
  if (!allowed.includes(tokenOrigin)) {
    throw new Error(`the token endpoint is on ${tokenOrigin}, not the issuer's origin: list it in [ui.oidc] connect_origins`);
  }
  return meta;
}

/**
 * Goes to the provider's authorization endpoint; it comes back to this
 * page with `#code=…&state=…` (see `returned`). `auto`: an attempt the
 * page made by itself (a token expired), which is not repeated until a
 * token works again.
 */
export async function begin(cfg, { auto = false } = {}) {
  if (!globalThis.crypto?.subtle) throw new Error("signing in needs a secure context: https, or loopback");
  const meta = await discover(cfg);
  const flow = {
    verifier: random(32),
    state: random(16),
    nonce: random(16),
    redirect: redirectUri(),
    token_endpoint: meta.token_endpoint,
    back: /^#check=/.test(location.hash) ? location.hash : "",
  };
  const url = new URL(meta.authorization_endpoint);
  const q = url.searchParams;
  q.set("response_type", "code");
  q.set("client_id", cfg.client_id);
  q.set("redirect_uri", flow.redirect);
  q.set("scope", cfg.scopes.join(" "));
  q.set("state", flow.state);
  q.set("nonce", flow.nonce);
  q.set("code_challenge", await challenge(flow.verifier));
  q.set("code_challenge_method", "S256");
  q.set("response_mode", "fragment");
  sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
  if (auto) sessionStorage.setItem(AUTO_KEY, "1");
  else sessionStorage.removeItem(AUTO_KEY);
  location.assign(url.href);
}

/** Whether the page may sign in again by itself: not if its last automatic attempt gave no working token. */
export function mayRetry() {
  return sessionStorage.getItem(AUTO_KEY) === null;
}

/** A feed works with the token: a later expiry may sign in again by itself. */
export function working() {
  sessionStorage.removeItem(AUTO_KEY);
}

/** The provider's answer in `hash` (state with code or error), or null for any other fragment. */
export function returned(hash = location.hash) {
  if (!hash.startsWith("#")) return null;
  const p = new URLSearchParams(hash.slice(1));
  if (!p.has("state") || !(p.has("code") || p.has("error"))) return null;
  return p;
}

/** The claims of a JWT, unverified: the gateway verifies it (PROTOCOL.md 3.11). */
function claimsOf(jwt) {
  const part = (jwt.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(part + "===".slice((part.length + 3) % 4));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

/**
 * Completes a sign-in from the provider's answer `p` (see `returned`):
 * checks state, exchanges the code with the verifier, checks the ID
 * token's nonce, iss and aud. {token, back}: the ID token and the route
 * to go back to; throws an Error saying what failed.
 */
export async function complete(cfg, p) {
  const stored = sessionStorage.getItem(FLOW_KEY);
  sessionStorage.removeItem(FLOW_KEY);
  if (p.has("error")) {
    const why = p.get("error_description");
    throw new Error(`the identity provider said ${p.get("error")}${why ? `: ${why}` : ""}`);
  }
  let flow = null;
  try {
    flow = JSON.parse(stored);
  } catch {
    flow = null;
  }
  if (!flow || p.get("state") !== flow.state) {
    throw new Error("this answer is not for a sign-in this tab started (state does not match): sign in again");
  }
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code: p.get("code") ?? "",
    redirect_uri: flow.redirect,
    client_id: cfg.client_id,
    code_verifier: flow.verifier,
  });
  let r;
  try {
    r = await fetch(flow.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new Error(`could not reach the token endpoint (${e.message})`);
  }
  let answer = {};
  try {
    answer = await r.json();
  } catch {
    answer = {};
  }
  if (!r.ok) {
    const why = answer.error_description ? `: ${answer.error_description}` : "";
    throw new Error(`the token endpoint refused the code: ${answer.error ?? r.status}${why}`);
  }
  const token = answer.id_token;
  if (typeof token !== "string") throw new Error('the token endpoint sent no id_token (is "openid" among [ui.oidc] scopes?)');
  let claims;
  try {
    claims = claimsOf(token);
  } catch {
    throw new Error("the id_token is not a JWT");
  }
  if (claims.nonce !== flow.nonce) throw new Error("the ID token's nonce is not this sign-in's");
  if (claims.iss !== cfg.issuer) throw new Error(`the ID token's issuer is ${JSON.stringify(claims.iss)}, not ${JSON.stringify(cfg.issuer)}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(cfg.client_id)) throw new Error(`the ID token is not for ${cfg.client_id} (aud)`);
  if (aud.length > 1 && claims.azp !== undefined && claims.azp !== cfg.client_id) {
    throw new Error(`the ID token was issued to ${JSON.stringify(claims.azp)} (azp)`);
  }
  return { token, back: flow.back };
}
