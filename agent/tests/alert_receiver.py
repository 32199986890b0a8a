"""A webhook receiver for the alerter's tests, verifying every delivery with
the reference Standard Webhooks library (PyPI `standardwebhooks`).

    python3 alert_receiver.py SECRET LOG

Listens on 127.0.0.1 (a free port, printed as `listening PORT` on stdout),
appends one JSON line per request to LOG:
  {"ok": true, "id", "timestamp", "payload", "received_ms", "status"}   verified
  {"ok": false, "error", "received_ms"}                                  refused (400)
and answers verified deliveries with the status set by `POST /control`
({"status": 503, "delay_s": 0.0}; default 200). /control is not signed.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET, LOG = sys.argv[1], sys.argv[2]
HOOK = Webhook(SECRET)
STATE = {"status": 200, "delay_s": 0.0}
LOCK = threading.Lock()


def log(entry):
    entry["received_ms"] = int(time.time() * 1000)
    with LOCK, open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        if self.path == "/control":
            with LOCK:
                STATE.update(json.loads(body))
            return self.answer(200, b"ok")
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = HOOK.verify(body, headers)
        except WebhookVerificationError as e:
            log({"ok": False, "error": str(e)})
            return self.answer(400, str(e).encode())
        with LOCK:
            status, delay = STATE["status"], STATE["delay_s"]
        if delay:
            time.sleep(delay)
        log({
            "ok": True,
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "payload": payload,
            "status": status,
            "raw": body.decode("utf-8"),
            "signature": headers.get("webhook-signature"),
        })
        self.answer(status, b"")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
