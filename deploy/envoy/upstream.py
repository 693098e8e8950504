"""A tiny upstream for the Envoy walkthrough (docs/envoy.md): answers every request
with 200 and what it saw, so you can tell what Envoy let through and which headers
Arbiter added. Listens on 127.0.0.1:8000 (or the port given)."""
import http.server
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    def answer(self):
        seen = [f"{k}: {v}" for k, v in self.headers.items() if k.lower().startswith("x-arbiter")]
        body = (f"upstream saw {self.command} {self.path}\n" + "\n".join(seen) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
http.server.ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
