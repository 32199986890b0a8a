"""A minimal identity provider for the gateway's OIDC tests: keys made
here, their JWKS served on loopback, tokens signed with PyJWT.

Prints the JWKS port, then answers one JSON command per stdin line:
  {"op": "mint", "kid": "rsa-1", "claims": {...}}  -> the token
  {"op": "publish", "kids": ["rsa-2", "ec-1"]}      -> "ok" (the JWKS now)
  {"op": "fetches"}                                -> how often /jwks was read
The key type follows the kid: rsa-* RS256, ec-* ES256, ed-* EdDSA,
hs-* HS256 (a shared secret, never published).
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

keys = {}
published = ["rsa-1", "ec-1", "ed-1"]
fetches = 0
lock = threading.Lock()


def key(kid):
    if kid not in keys:
        if kid.startswith("rsa-"):
            keys[kid] = ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        elif kid.startswith("ec-"):
            keys[kid] = ("ES256", ec.generate_private_key(ec.SECP256R1()))
        elif kid.startswith("ed-"):
            keys[kid] = ("EdDSA", ed25519.Ed25519PrivateKey.generate())
        else:
            keys[kid] = ("HS256", b"a shared secret of at least thirty-two bytes")
    return keys[kid]


def jwk(kid):
    alg, private = key(kid)
    codec = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    out = json.loads(codec.to_jwk(private.public_key()))
    out.update({"kid": kid, "use": "sig", "alg": alg})
    return out


class Jwks(BaseHTTPRequestHandler):
    def do_GET(self):
        global fetches
        if self.path != "/jwks":
            self.send_error(404)
            return
        with lock:
            fetches += 1
            body = json.dumps({"keys": [jwk(k) for k in published]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/jwk-set+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    global published
    for kid in published:
        key(kid)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        with lock:
            if cmd["op"] == "mint":
                alg, private = key(cmd["kid"])
                token = jwt.encode(cmd["claims"], private, algorithm=alg, headers={"kid": cmd["kid"]})
                print(token, flush=True)
            elif cmd["op"] == "publish":
                for kid in cmd["kids"]:
                    key(kid)
                published = list(cmd["kids"])
                print("ok", flush=True)
            elif cmd["op"] == "fetches":
                print(fetches, flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
