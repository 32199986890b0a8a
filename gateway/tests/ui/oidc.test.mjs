// oidc.js: the PKCE challenge, which fragments are a provider's answer,
// and what completing a sign-in checks (state, the token endpoint's
// refusal, nonce, iss, aud), against a stubbed token endpoint.
import assert from "node:assert/strict";
import test from "node:test";

import { challenge, complete, issuerHost, returned } from "../../ui/oidc.js";

const cfg = { issuer: "https://login.example/realms/ops", client_id: "sonde-page", scopes: ["openid"], connect_origins: [] };

/** sessionStorage as the page has it. */
const store = new Map();
globalThis.sessionStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
};

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = (claims) => `${b64({ alg: "RS256", kid: "k" })}.${b64(claims)}.c2ln`;
const flow = { verifier: "v".repeat(43), state: "st-1", nonce: "no-1", redirect: "https://gw.example/", token_endpoint: "https://login.example/token", back: "#check=eu/a/api" };
const good = { iss: cfg.issuer, aud: "sonde-page", sub: "alice", nonce: "no-1", exp: 2e9 };

/** Starts a sign-in as begin() leaves it, and a token endpoint answering `status`, `body`; the requests it got. */
function endpoint(status, body) {
  store.set("sonde.oidc.flow", JSON.stringify(flow));
  const got = [];
  globalThis.fetch = async (url, init) => {
    got.push({ url, init });
    return { ok: status === 200, status, json: async () => body };
  };
  return got;
}

test("the S256 challenge is RFC 7636's (appendix B)", async () => {
  assert.equal(await challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
});

test("only a fragment with state and a code or an error is the provider's answer", () => {
  assert.equal(returned("#code=c1&state=s1").get("code"), "c1");
  assert.equal(returned("#error=access_denied&state=s1").get("error"), "access_denied");
  for (const other of ["", "#", "#check=eu/a/api", "#token=abc", "#code=c1", "#state=s1"]) assert.equal(returned(other), null, other);
  assert.equal(issuerHost(cfg), "login.example");
});

test("a good answer: the code exchanged with the verifier, the ID token and the route back", async () => {
  const token = jwt(good);
  const got = endpoint(200, { id_token: token, token_type: "Bearer" });
  const done = await complete(cfg, returned("#code=c1&state=st-1"));
  assert.deepEqual(done, { token, back: "#check=eu/a/api" });
  assert.equal(got.length, 1);
  assert.equal(got[0].url, flow.token_endpoint);
  assert.equal(got[0].init.method, "POST");
  assert.equal(got[0].init.headers["Content-Type"], "application/x-www-form-urlencoded");
  assert.deepEqual(Object.fromEntries(got[0].init.body), {
    grant_type: "authorization_code",
    code: "c1",
    redirect_uri: "https://gw.example/",
    client_id: "sonde-page",
    code_verifier: flow.verifier,
  });
  assert.equal(store.get("sonde.oidc.flow"), undefined, "a sign-in completes once");
});

test("what is refused, and says why", async () => {
  const cases = [
    ["#error=access_denied&error_description=no+thanks&state=st-1", 200, {}, /access_denied: no thanks/],
    ["#code=c1&state=forged", 200, { id_token: jwt(good) }, /state does not match/],
    ["#code=c1&state=st-1", 400, { error: "invalid_grant", error_description: "PKCE verification failed" }, /refused the code: invalid_grant: PKCE/],
    ["#code=c1&state=st-1", 200, { access_token: "a" }, /no id_token/],
    ["#code=c1&state=st-1", 200, { id_token: jwt({ ...good, nonce: "other" }) }, /nonce/],
    ["#code=c1&state=st-1", 200, { id_token: jwt({ ...good, iss: "https://evil.example" }) }, /issuer/],
    ["#code=c1&state=st-1", 200, { id_token: jwt({ ...good, aud: ["other"] }) }, /not for sonde-page/],
    ["#code=c1&state=st-1", 200, { id_token: jwt({ ...good, aud: ["sonde-page", "x"], azp: "x" }) }, /azp/],
  ];
  for (const [hash, status, body, says] of cases) {
    endpoint(status, body);
    await assert.rejects(complete(cfg, returned(hash)), says, hash);
  }
  // Without a sign-in under way, a code is not exchanged.
  store.clear();
  const got = [];
  globalThis.fetch = async (url) => got.push(url);
  await assert.rejects(complete(cfg, returned("#code=c1&state=st-1")), /state does not match/);
  assert.equal(got.length, 0);
});
