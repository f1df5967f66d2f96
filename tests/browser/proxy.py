"""A reverse proxy that mounts the local server under a path prefix, as API Gateway
serves the app under its stage path (``https://…/api/``): the browser tests open the
page through it to prove every URL the page and the API produce stays under the prefix.

Standard library only. ``<prefix>/x`` is forwarded as ``/x`` and ``<prefix>`` alone as
``/`` (API Gateway routes ``…/api`` to the root resource too), with the method, every
header but the hop-by-hop ones (Authorization included), the body and the query; the
answer comes back as it is (status, headers, body; redirects are not followed, a
``Location`` is not rewritten). Anything outside the prefix gets API Gateway's 403.
Every request's method and path is recorded in ``seen``.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# RFC 9110 7.6.1: the connection's, not the message's. Content-Length is recomputed.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "host", "content-length"}
SET_HERE = {"server", "date"}  # send_response() writes its own
OUTSIDE = b'{"message":"Missing Authentication Token"}'  # what API Gateway answers off its routes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx goes back to the browser as it came


_OPENER = urllib.request.build_opener(_NoRedirects)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: PrefixProxy


class _Forward(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP | SET_HERE:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        proxy = self.server.proxy
        proxy.record(self.command, self.path)
        path, mark, query = self.path.partition("?")
        if path != proxy.prefix and not path.startswith(f"{proxy.prefix}/"):
            self._answer(403, [("Content-Type", "application/json")], OUTSIDE)
            return
        target = f"{proxy.upstream}{path[len(proxy.prefix):] or '/'}{mark}{query}"
        length = int(self.headers.get("Content-Length") or 0)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        request = urllib.request.Request(target, data=self.rfile.read(length) if length else None,
                                         headers=headers, method=self.command)
        try:
            with _OPENER.open(request, timeout=60) as response:
                self._answer(response.status, list(response.headers.items()), response.read())
        except urllib.error.HTTPError as refused:
            self._answer(refused.code, list(refused.headers.items()), refused.read())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward


class PrefixProxy:
    """``with PrefixProxy("http://127.0.0.1:8000", "/api") as proxy``: the upstream's
    routes under ``proxy.url`` (``http://127.0.0.1:<port>/api/``)."""

    def __init__(self, upstream: str, prefix: str = "/api") -> None:
        self.upstream = upstream.rstrip("/")
        self.prefix = "/" + prefix.strip("/")
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Forward)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="prefix-proxy", daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """Where the app's root is: the prefix, with its trailing slash."""
        return f"{self.origin}{self.prefix}/"

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.seen.append((method, path))

    def forget(self) -> None:
        with self._lock:
            self.seen.clear()

    def outside(self) -> list[tuple[str, str]]:
        """The requests that reached the proxy off the prefix (each answered 403)."""
        with self._lock:
            return [(method, path) for method, path in self.seen
                    if path.partition("?")[0] != self.prefix and not path.startswith(f"{self.prefix}/")]

    def __enter__(self) -> PrefixProxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
