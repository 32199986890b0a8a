"""A minimal OpenID provider on loopback for the live page's sign-in test
(tests/live_page_oidc.rs): the authorization code flow with PKCE (S256)
for one public client, as real providers answer it, ID tokens signed
RS256 with PyJWT.

    python3 idp_login.py '{"client_id": "...", "redirect_uris": [...], "origins": [...]}'

Prints its port (the issuer is http://127.0.0.1:<port>), then serves:
  GET  /.well-known/openid-configuration   the discovery document
  GET  /authorize   checks client_id, redirect_uri, response_type=code,
                    code_challenge_method=S256 and openid in scope, then
                    approves the configured user at once (no login form)
                    and redirects to redirect_uri with code and state,
                    in the fragment for response_mode=fragment
  POST /token       checks the code (once, within 60 s), client_id,
                    redirect_uri and that base64url(SHA-256(code_verifier))
                    is the code_challenge, else 400 invalid_grant; answers
                    {id_token, access_token, token_type, expires_in}
  GET  /jwks        the signing key
with CORS for `origins` on discovery, token and JWKS (preflights answered).

One JSON command per stdin line, one line back:
  {"op": "user", "sub": "alice", "claims": {...}, "ttl": 3600} -> "ok"
      who /authorize approves next, the claims their ID token adds, its
      lifetime in seconds; {"op": "user", "deny": true} refuses instead
      (error=access_denied)
  {"op": "log"} -> {"authorizations": [query...], "codes": [...],
      "tokens": [...], "exchanges": [{"status", "error"}...]}
"""

import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KID = "login-1"
PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")

lock = threading.Lock()
client = {}
issuer = ""
user = {"sub": "alice", "claims": {}, "ttl": 3600, "deny": False}
codes = {}
log = {"authorizations": [], "codes": [], "tokens": [], "exchanges": []}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks():
    key = json.loads(RSAAlgorithm.to_jwk(PRIVATE.public_key()))
    key.update({"kid": KID, "use": "sig", "alg": "RS256"})
    return {"keys": [key]}


def discovery():
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid"],
    }


class Provider(BaseHTTPRequestHandler):
    def cors(self):
        origin = self.headers.get("Origin")
        if origin and origin in client["origins"]:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def answer(self, status, body, content_type="application/json", extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra:
            self.send_header(k, v)
        self.cors()
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, uri, mode, params):
        sep = "#" if mode == "fragment" else ("&" if "?" in uri else "?")
        self.send_response(302)
        self.send_header("Location", uri + sep + urlencode(params))
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def do_OPTIONS(self):
        self.send_response(204)
        self.cors()
        if self.headers.get("Origin") in client["origins"]:
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/.well-known/openid-configuration":
            self.answer(200, discovery())
        elif url.path == "/jwks":
            self.answer(200, jwks(), "application/jwk-set+json")
        elif url.path == "/authorize":
            self.authorize(dict(parse_qsl(url.query)))
        else:
            self.answer(404, {"error": "not_found"})

    def authorize(self, q):
        with lock:
            log["authorizations"].append(q)
            # Never redirect to a URI not registered for the client.
            if q.get("client_id") != client["client_id"]:
                self.answer(400, b"unknown client_id\n", "text/plain")
                return
            uri = q.get("redirect_uri", "")
            if uri not in client["redirect_uris"]:
                self.answer(400, b"redirect_uri is not registered\n", "text/plain")
                return
            mode, state = q.get("response_mode"), q.get("state", "")
            fail = None
            if q.get("response_type") != "code":
                fail = ("unsupported_response_type", "only code")
            elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                fail = ("invalid_request", "PKCE with code_challenge_method=S256 is required")
            elif "openid" not in q.get("scope", "").split(" "):
                fail = ("invalid_scope", "openid is required")
            elif user["deny"]:
                fail = ("access_denied", "the user said no")
            if fail:
                self.redirect(uri, mode, {"error": fail[0], "error_description": fail[1], "state": state})
                return
            code = secrets.token_urlsafe(32)
            codes[code] = {
                "client_id": q["client_id"],
                "redirect_uri": uri,
                "challenge": q["code_challenge"],
                "nonce": q.get("nonce"),
                "scope": q.get("scope"),
                "user": dict(user),
                "until": time.time() + 60,
            }
            log["codes"].append(code)
        self.redirect(uri, mode, {"code": code, "state": state})

    def do_POST(self):
        if urlsplit(self.path).path != "/token":
            self.answer(404, {"error": "not_found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        with lock:
            status, body = self.exchange(form)
            log["exchanges"].append({"status": status, "error": body.get("error")})
            if status == 200:
                log["tokens"].append(body["id_token"])
        self.answer(status, body, extra=[("Pragma", "no-cache")])

    def exchange(self, form):
        def refuse(error, why):
            return 400, {"error": error, "error_description": why}

        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type", "only authorization_code")
        # A code is good for one exchange, whatever its outcome.
        grant = codes.pop(form.get("code", ""), None)
        if grant is None or grant["until"] < time.time():
            return refuse("invalid_grant", "unknown, used or expired code")
        if form.get("client_id") != grant["client_id"]:
            return refuse("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return refuse("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        if not VERIFIER.match(verifier):
            return refuse("invalid_grant", "code_verifier missing or malformed")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return refuse("invalid_grant", "PKCE verification failed")
        who, now = grant["user"], int(time.time())
        claims = {
            "iss": issuer,
            "aud": grant["client_id"],
            "sub": who["sub"],
            "iat": now,
            "auth_time": now,
            "exp": now + who["ttl"],
        }
        if grant["nonce"] is not None:
            claims["nonce"] = grant["nonce"]
        claims.update(who["claims"])
        token = jwt.encode(claims, PRIVATE, algorithm="RS256", headers={"kid": KID})
        return 200, {
            "id_token": token,
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": who["ttl"],
            "scope": grant["scope"],
        }

    def log_message(self, *args):
        pass


def main():
    global client, issuer, user
    client = json.loads(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        with lock:
            if cmd["op"] == "user":
                user = {
                    "sub": cmd.get("sub", "alice"),
                    "claims": cmd.get("claims", {}),
                    "ttl": cmd.get("ttl", 3600),
                    "deny": cmd.get("deny", False),
                }
                print("ok", flush=True)
            elif cmd["op"] == "log":
                print(json.dumps(log), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
