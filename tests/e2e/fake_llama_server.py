#!/usr/bin/env python3
"""A stand-in for llama-server in launcher tests: parses --host/--port, answers /health, or crashes on demand.

FAKE_LLAMA_MODE=crash prints a few log lines and exits 3 (a bad model, an unknown flag...).
It writes its argv as JSON to $FAKE_LLAMA_ARGV_FILE so tests can check what the launcher passed.
"""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> None:
    args = sys.argv[1:]
    if os.environ.get("FAKE_LLAMA_ARGV_FILE"):
        with open(os.environ["FAKE_LLAMA_ARGV_FILE"], "w") as handle:
            json.dump(args, handle)
    if os.environ.get("FAKE_LLAMA_MODE") == "crash":
        print("llama_model_load: loading model", file=sys.stderr)
        print("gguf_init_from_file: failed to read tensor data", file=sys.stderr)
        sys.exit(3)
    host = args[args.index("--host") + 1]
    port = int(args[args.index("--port") + 1])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            body = b'{"status":"ok"}'
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    def on_term(signum: int, frame: object) -> None:
        print(f"fake llama-server: got signal {signum}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"main: server is listening on http://{host}:{port}", flush=True)
    HTTPServer((host, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
