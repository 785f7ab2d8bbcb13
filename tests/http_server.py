"""A small HTTP server on 127.0.0.1 for tests of downloads; nothing here touches the internet.

    def test_something(http_server):  # the pytest fixture, from tests/conftest.py
        url = http_server.add("/file.bin", b"bytes")  # -> 'http://127.0.0.1:<port>/file.bin'
        ...
        assert http_server.requests == ["/file.bin"]

Or, without pytest: `with serve({"/a": b"..."}) as server: ...`.

What it does:
* a path in `files` gets 200 with Content-Length and the bytes;
* an unknown path gets 404 (and is recorded like every other request);
* `add(path, data, interrupt_after=n)`: announces the full Content-Length but sends only the first
  `n` bytes, then closes the connection (an interrupted transfer);
* `add(path, data, chunked=True)`: Transfer-Encoding: chunked, no Content-Length; with
  `interrupt_after=n` too, the connection closes after `n` bytes in the middle of a chunk;
* `redirect(path, location, code=302)`: answers `path` with a redirect to `location`;
* `add(path, data, announce=n)`: sends Content-Length n whatever the data's length (a server that
  announces 1e12 bytes);
* `requests`: the paths requested, in order (`headers` has each request's headers).

`dead_url()` gives a URL on a port nothing listens on (connection refused), for "server down".
"""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

HOST = "127.0.0.1"


class LocalServer:
    """Serves `files` (path -> bytes) on 127.0.0.1 at an ephemeral port, in a daemon thread."""

    def __init__(self, files: dict[str, bytes] | None = None):
        self.files: dict[str, bytes] = dict(files or {})
        self.interrupt_after: dict[str, int] = {}
        self.chunked: set[str] = set()
        self.redirects: dict[str, tuple[int, str]] = {}
        self.announce: dict[str, int] = {}
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up
    def add(
        self, path: str, data: bytes, *, interrupt_after: int | None = None, chunked: bool = False,
        announce: int | None = None,
    ) -> str:
        """Serve `data` at `path` ('/x.bin'); returns its full URL."""
        if announce is not None:
            self.announce[path] = announce
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        self.files[path] = bytes(data)
        if interrupt_after is not None:
            if not 0 <= interrupt_after < len(data):
                raise ValueError("interrupt_after must be in [0, len(data))")
            self.interrupt_after[path] = interrupt_after
        if chunked:
            self.chunked.add(path)
        return self.url(path)

    def redirect(self, path: str, location: str, code: int = 302) -> str:
        """Answer `path` with a redirect to `location`; returns the path's full URL."""
        self.redirects[path] = (code, location)
        return self.url(path)

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def count(self, path: str) -> int:
        """How many requests `path` got."""
        with self._lock:
            return self.requests.count(path)

    # -- life cycle
    def start(self) -> "LocalServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # needed for chunked responses
            timeout = 10  # a stuck client cannot hold a handler thread for ever

            def log_message(self, format, *args):  # keep test output clean
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests.append(path)
                    server.headers.append(dict(self.headers))
                    data = server.files.get(path)
                    cut = server.interrupt_after.get(path)
                    chunked = path in server.chunked
                    redirect = server.redirects.get(path)
                    announce = server.announce.get(path)
                self.close_connection = True  # one request per connection keeps things simple
                if redirect is not None:
                    self.send_response(redirect[0])
                    self.send_header("Location", redirect[1])
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    return
                if data is None:
                    body = b"not found\n"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Connection", "close")
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    if cut is None:
                        if data:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.write(b"0\r\n\r\n")
                    else:  # announce the whole chunk, send part of it, hang up
                        self.wfile.write(b"%x\r\n%s" % (len(data), data[:cut]))
                    self.wfile.flush()
                    return
                self.send_header("Content-Length", str(announce if announce is not None else len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data if cut is None else data[:cut])
                except (BrokenPipeError, ConnectionResetError):  # the client hung up, as it may
                    return
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._httpd = Server((HOST, 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def serve(files: dict[str, bytes] | None = None) -> Iterator[LocalServer]:
    """Context manager: a started LocalServer, shut down on exit."""
    server = LocalServer(files).start()
    try:
        yield server
    finally:
        server.close()


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def dead_url(path: str = "/file") -> str:
    """A URL whose connection is refused: 'the server is down'."""
    return f"http://{HOST}:{unused_port()}{path}"
