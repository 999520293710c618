"""A local HTTP server for the download tests (127.0.0.1, a free port, its own thread): serves
the files of one folder with HTTP Range support, and can misbehave on purpose."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HUGE = 10 * 2**30  # what "huge" claims


class WeightsServer:
    """mode: "ok", "truncate" (declares the full length, sends half, closes), "404", "500",
    "norange" (ignores Range: always the whole file), and the hostile ones: "zeros" (no length,
    zeros until the client hangs up), "huge" (claims 10 GiB, then zeros), "trickle" (the file's
    length, then its bytes one every `interval` seconds). `sent`: bytes written by hostile modes."""

    def __init__(self, root: Path, interval: float = 0.3) -> None:
        self.root, self.mode, self.requests = Path(root), "ok", []
        self.interval, self.sent, self.stop = interval, 0, threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                if server.mode in ("404", "500"):
                    self.send_error(int(server.mode))
                    return
                if server.mode in ("zeros", "huge", "trickle"):
                    self.hostile()
                    return
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data, start = path.read_bytes(), 0
                rng = self.headers.get("Range")
                if rng and server.mode != "norange":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "truncate":
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

            def hostile(self) -> None:
                data = (server.root / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                if server.mode != "zeros":
                    self.send_header("Content-Length", str(HUGE if server.mode == "huge" else len(data)))
                self.end_headers()
                trickle = server.mode == "trickle"
                try:
                    while not server.stop.is_set() and server.sent < (len(data) if trickle else 2**31):
                        self.wfile.write(data[server.sent:server.sent + 1] if trickle else b"\0" * 2**16)
                        self.wfile.flush()
                        server.sent += 1 if trickle else 2**16
                        time.sleep(server.interval if trickle else 0)
                except OSError:  # the client hung up: what a bounded download does
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WeightsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
