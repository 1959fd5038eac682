"""A tiny Alertmanager webhook receiver: prints every notification as one JSON line on stdout.

``python receiver.py [--port 8080]``. POST to any path (Alertmanager posts to the receiver URL,
``/alerts/<receiver>`` in deploy/alertmanager/alertmanager.yml); each line is
``{"path": "/alerts/analysts", "notification": {...Alertmanager webhook payload...}}``.
``GET /healthz`` answers 200 for the compose healthcheck. Standard library only.
"""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            notification = json.loads(body)
        except ValueError:
            self.send_error(400, "body is not JSON")
            return
        sys.stdout.write(json.dumps({"path": self.path, "notification": notification}) + "\n")
        sys.stdout.flush()
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        if self.path != "/healthz":
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format, *args):  # keep stdout for notifications only
        pass


def main() -> None:
    p = argparse.ArgumentParser(description="Print Alertmanager webhook notifications as JSON lines.")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    args = p.parse_args()
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
