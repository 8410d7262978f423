"""A Hub proxy for benchmarks: metadata from olah, file bytes from disk, each connection capped like a CDN stream.

    with CappedProxy(olah_url, files={"lab/big/pytorch_model.bin": path}, cap_bytes_per_s=6e6) as proxy:
        ... HF_ENDPOINT=proxy.url ...
        proxy.stats("lab/big/pytorch_model.bin").body_bytes

olah (tests/hubserver.py) serves the metadata a client needs, but it ignores `Range` and streams a file at
whatever speed Python manages; a real Hub download comes from a CDN that honours ranges and holds each
connection to a few MB/s however fast the link is. This proxy, on 127.0.0.1, in front of olah (the URL it is
given):

- forwards metadata requests (every HEAD, and every GET that is not a file download: the API) to olah as they
  are, and relays olah's answer: status, ETag, X-Linked-Etag, X-Linked-Size, X-Repo-Commit, Content-Length and
  Location as olah sends them (an absolute Location pointing at olah itself is pointed at the proxy, as a reverse
  proxy does, so that the client's next request comes back here);
- answers a file download (GET `/[datasets/|spaces/]{repo}/resolve/{revision}/{filename}`, or GET of a URL on
  olah that olah redirected a HEAD of one to) itself: it asks olah for the file's headers with a HEAD (following
  olah's redirects inside the proxy; olah in the tests' offline mode gives none: its HEAD answers 200 with
  X-Repo-Commit, ETag and Content-Length, and its GET streams the file, ignoring Range), then sends the bytes
  from a copy on disk: the path `files` maps "{repo}/{filename}" (or the file name alone) to, else a
  copy fetched whole from olah once and kept in `spool_dir`. `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` get
  a 206 with Content-Range; a range past the end a 416; anything else (several ranges) the whole file, 200;
- paces each connection to `cap_bytes_per_s` (0 or None: no cap, the bytes go out by sendfile as fast as the
  client takes them), so that N connections get N times the cap; the cap can be changed between requests;
- counts, per file, the body bytes it put on the wire, the requests (connection, Range) and the most connections
  that were streaming it at once (`stats`), and the same across all files (`stats()` with no key).

It is a ThreadingHTTPServer with daemon threads, HTTP/1.1 keep-alive (every answer has a Content-Length), and
a client that hangs up mid-file (killed, say) just ends its connection.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import threading
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULT_CAP = 6_000_000  # bytes per second per connection: a fair CDN stream
CAPPED_CHUNK = 64 * 1024  # bytes per paced send: about 11 ms at 6 MB/s
UNCAPPED_CHUNK = 8 * 2**20
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
REDIRECTS = (301, 302, 303, 307, 308)
RESOLVE = re.compile(
    r"^/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$"
)


@dataclass
class FileStats:
    """What the proxy served of one file (or of all files)."""

    body_bytes: int = 0  # body bytes handed to the kernel for this file's downloads
    requests: list[tuple[int, str | None]] = field(default_factory=list)  # (connection id, Range header)
    connections: set[int] = field(default_factory=set)  # connections that carried its bytes
    streaming: int = 0  # connections sending its bytes right now
    peak_streams: int = 0  # the most at once

    def copy(self) -> FileStats:
        return replace(self, requests=list(self.requests), connections=set(self.connections))


@dataclass(frozen=True)
class Upstream:
    """olah's answer to a HEAD of a file: the headers to send with its bytes."""

    status: int
    headers: list[tuple[str, str]]
    size: int | None


class CappedProxy:
    """A proxy in front of olah serving file downloads from disk at a per-connection rate; see the module."""

    def __init__(
        self,
        upstream: str,
        files: dict[str, Path] | None = None,
        cap_bytes_per_s: float | None = DEFAULT_CAP,
        spool_dir: Path | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.netloc:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = parts.netloc
        self.files = {key: Path(path) for key, path in (files or {}).items()}
        self.cap_bytes_per_s = cap_bytes_per_s
        self.spool_dir = spool_dir
        self.lock = threading.Lock()
        self._stats: dict[str, FileStats] = {}
        self._all = FileStats()
        self._heads: dict[str, Upstream] = {}
        self._spooled: dict[str, Path] = {}
        self._spool_locks: dict[str, threading.Lock] = {}
        self._redirects: dict[str, tuple[str, str]] = {}  # a Location olah gave for a file -> (key, its URL)
        self._connections = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 120  # an idle keep-alive connection is closed after this long

            def setup(self) -> None:
                super().setup()
                with proxy.lock:
                    proxy._connections += 1
                    self.connection_id = proxy._connections

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                proxy.handle(self, "HEAD")

            def do_GET(self) -> None:  # noqa: N802
                proxy.handle(self, "GET")

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            request_queue_size = 128

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hangs up (or is killed) mid-answer ends only its own connection

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CappedProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- counters ---------------------------------------------------------------------------------------------

    def stats(self, key: str | None = None) -> FileStats:
        """A copy of the counters of one file ("{repo}/{filename}", "datasets/{repo}/{filename}" for a dataset),
        or of all files together."""
        with self.lock:
            found = self._all if key is None else self._stats.get(key, FileStats())
            return found.copy()

    def reset_stats(self) -> None:
        with self.lock:  # in place: the answers under way hold these objects and count into them
            for counters in [*self._stats.values(), self._all]:
                counters.body_bytes = 0
                counters.requests.clear()
                counters.connections.clear()
                counters.peak_streams = counters.streaming

    # -- requests ---------------------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        request.answering = False  # type: ignore[attr-defined] # whether this request's answer has begun
        match = RESOLVE.match(urllib.parse.urlsplit(request.path).path)
        with self.lock:
            redirected = self._redirects.get(request.path)
        try:
            if method == "GET" and match is not None:
                self.serve_file(request, _key(match), request.path)
            elif method == "GET" and redirected is not None:  # where olah sent a client for a file: that file
                self.serve_file(request, *redirected)
            else:
                self.relay(request, method)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            request.close_connection = True
        except (RuntimeError, OSError) as err:  # the proxy's own failure (olah down, a copy of the wrong size)
            request.close_connection = True
            if not request.answering:  # type: ignore[attr-defined]
                request.send_error(502, f"capped_proxy: {err}"[:200])
            raise

    def relay(self, request: BaseHTTPRequestHandler, method: str) -> None:
        """Forward a metadata request to olah and its answer back, headers as olah sends them."""
        status, headers, body = self._ask(method, request.path, self._forwarded(request))
        location = dict((k.lower(), v) for k, v in headers).get("location")
        match = RESOLVE.match(urllib.parse.urlsplit(request.path).path)
        if match is not None and status in REDIRECTS and location:  # the client's next request: this file
            parts = urllib.parse.urlsplit(urllib.parse.urljoin(f"http://{self.upstream}{request.path}", location))
            if parts.scheme == "http" and parts.netloc == self.upstream:
                with self.lock:
                    self._redirects[parts.path + (f"?{parts.query}" if parts.query else "")] = (
                        _key(match),
                        request.path,
                    )
        request.send_response(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP | {"content-length", "date", "server"}:
                request.send_header(key, self._local_location(value) if key.lower() == "location" else value)
        length = dict((k.lower(), v) for k, v in headers).get("content-length") if method == "HEAD" else None
        request.send_header("Content-Length", length if length is not None else str(len(body)))
        request.end_headers()
        if method == "GET":
            request.wfile.write(body)

    def serve_file(self, request: BaseHTTPRequestHandler, key: str, resolve: str) -> None:
        """A file download (`resolve`: its /resolve/ URL): olah's headers, the bytes from disk, the range asked
        for, at the capped rate."""
        head = self._head(resolve, self._forwarded(request))
        if head.status != 200:  # not a file olah would send (404, 401...): its answer, as it gives it
            self.relay(request, "GET")
            return
        local = self._local_copy(key, key.rsplit("/", 1)[-1], resolve, self._forwarded(request))
        size = local.stat().st_size
        if head.size is not None and head.size != size:
            raise RuntimeError(f"{key}: olah announces {head.size} bytes, the copy on disk has {size}")
        first, last, status = 0, size - 1, 200
        wanted = request.headers.get("Range")
        if wanted is not None:
            asked = _parse_range(wanted, size)
            if asked == "unsatisfiable":
                request.send_response(416)
                request.send_header("Content-Range", f"bytes */{size}")
                request.send_header("Content-Length", "0")
                request.end_headers()
                return
            if asked is not None:
                first, last = asked
                status = 206
        request.answering = True  # type: ignore[attr-defined]
        request.send_response(status)
        for name, value in head.headers:
            if name.lower() not in HOP_BY_HOP | {"content-length", "date", "server", "content-range", "accept-ranges"}:
                request.send_header(name, self._local_location(value) if name.lower() == "location" else value)
        request.send_header("Accept-Ranges", "bytes")
        if status == 206:
            request.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        request.send_header("Content-Length", str(last - first + 1))
        request.end_headers()
        request.wfile.flush()
        connection_id = getattr(request, "connection_id", 0)
        with self.lock:
            counters = [self._stats.setdefault(key, FileStats()), self._all]
            for c in counters:
                c.requests.append((connection_id, wanted))
                c.connections.add(connection_id)
                c.streaming += 1
                c.peak_streams = max(c.peak_streams, c.streaming)
        try:
            self._send(request, local, first, last + 1 - first, counters)
        finally:
            with self.lock:
                for c in counters:
                    c.streaming -= 1

    def _send(
        self, request: BaseHTTPRequestHandler, local: Path, offset: int, count: int, counters: list[FileStats]
    ) -> None:
        """Send `count` bytes of the file from `offset`, pacing them to the cap as read when the answer began."""
        cap = self.cap_bytes_per_s or 0
        chunk = CAPPED_CHUNK if cap > 0 else UNCAPPED_CHUNK
        out = request.connection.fileno()
        start = time.monotonic()
        sent = 0
        with open(local, "rb") as source:
            while sent < count:
                try:
                    n = os.sendfile(out, source.fileno(), offset + sent, min(chunk, count - sent))
                except BlockingIOError:  # the socket has a timeout, so it is non-blocking: wait until writable
                    if not select.select([], [out], [], request.timeout)[1]:
                        raise TimeoutError("the client took no bytes") from None
                    continue
                if n == 0:
                    raise RuntimeError(f"{local} ended early")
                sent += n
                with self.lock:
                    for c in counters:
                        c.body_bytes += n
                if cap > 0 and sent < count:
                    delay = start + sent / cap - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)

    # -- olah -------------------------------------------------------------------------------------------------

    def _forwarded(self, request: BaseHTTPRequestHandler) -> dict[str, str]:
        dropped = HOP_BY_HOP | {"host", "range", "if-range"}
        return {k: v for k, v in request.headers.items() if k.lower() not in dropped}

    def _ask(
        self, method: str, target: str, headers: dict[str, str], netloc: str | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(netloc or self.upstream, timeout=60)
        try:
            connection.request(method, target, headers=headers)
            response = connection.getresponse()
            body = response.read()
            return response.status, response.getheaders(), body
        finally:
            connection.close()

    def _follow(
        self, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes, list[tuple[str, str]]]:
        """Ask olah, following its redirects (to itself or another http host); returns the final answer and the
        headers of the first one (which carry X-Repo-Commit and the linked ETag and size on the Hub)."""
        netloc, first_headers = self.upstream, None
        for _ in range(6):
            status, got, body = self._ask(method, target, headers, netloc)
            first_headers = first_headers if first_headers is not None else got
            location = dict((k.lower(), v) for k, v in got).get("location")
            if status not in REDIRECTS or not location:
                return status, got, body, first_headers
            parts = urllib.parse.urlsplit(urllib.parse.urljoin(f"http://{netloc}{target}", location))
            if parts.scheme != "http":
                raise RuntimeError(f"olah redirected {target} to {location}, which this proxy cannot follow")
            netloc, target = parts.netloc, parts.path + (f"?{parts.query}" if parts.query else "")
        raise RuntimeError(f"too many redirects from {target}")

    def _head(self, target: str, headers: dict[str, str]) -> Upstream:
        """olah's headers for a file (asked once per URL: the benchmark's files do not change)."""
        with self.lock:
            known = self._heads.get(target)
        if known is not None:
            return known
        status, final, _, first = self._follow("HEAD", target, headers)
        merged = [(k, v) for k, v in first if k.lower() != "location"]
        names = {k.lower() for k, _ in merged}
        merged += [(k, v) for k, v in final if k.lower() not in names]
        sizes = dict((k.lower(), v) for k, v in merged)
        size_text = sizes.get("x-linked-size") or dict((k.lower(), v) for k, v in final).get("content-length")
        head = Upstream(status, merged, int(size_text) if size_text and size_text.isdigit() else None)
        if status == 200:
            with self.lock:
                self._heads[target] = head
        return head

    def _local_copy(self, key: str, filename: str, target: str, headers: dict[str, str]) -> Path:
        """The file's bytes on disk: the copy the caller gave, or olah's, fetched whole once."""
        given = self.files.get(key) or self.files.get(filename)
        if given is not None:
            return given
        with self.lock:
            lock = self._spool_locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._spooled:
                return self._spooled[key]
            if self.spool_dir is None:
                raise RuntimeError(f"{key}: no copy on disk and no spool_dir to fetch one into")
            status, _, body, _ = self._follow("GET", target, headers)
            if status != 200:
                raise RuntimeError(f"{key}: olah answered {status} to the download")
            path = self.spool_dir / urllib.parse.quote(key, safe="")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            self._spooled[key] = path
            return path

    def _local_location(self, value: str) -> str:
        """An absolute redirect to olah itself, pointed at the proxy; any other Location as it is."""
        parts = urllib.parse.urlsplit(value)
        if parts.scheme == "http" and parts.netloc == self.upstream:
            return self.url + value[len(f"http://{parts.netloc}") :]
        return value


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) of one `bytes=` range, "unsatisfiable", or None for a header to ignore (send it all)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    try:
        if not dash:
            return None
        if not first_text:  # bytes=-n: the last n bytes
            n = int(last_text)
            if n <= 0:
                return "unsatisfiable"
            return max(size - n, 0), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size:
        return "unsatisfiable"
    if last < first:
        return None
    return first, min(last, size - 1)


def _key(match: re.Match[str]) -> str:
    kind = f"{match['kind']}/" if match["kind"] else ""
    return f"{kind}{urllib.parse.unquote(match['repo'])}/{urllib.parse.unquote(match['file'])}"


def file_key(repo: str, filename: str, repo_type: str = "model") -> str:
    """The key `files` and `stats` use for a file."""
    return f"{'' if repo_type == 'model' else repo_type + 's/'}{repo}/{filename}"


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a manual check
    """Run the proxy in front of a URL until interrupted: python benchmarks/capped_proxy.py URL [CAP_MB]."""
    import sys
    import tempfile

    args = argv if argv is not None else sys.argv[1:]
    cap = float(args[1]) * 1e6 if len(args) > 1 else DEFAULT_CAP
    with (
        tempfile.TemporaryDirectory() as spool,
        CappedProxy(args[0], cap_bytes_per_s=cap, spool_dir=Path(spool)) as proxy,
    ):
        print(f"{proxy.url} -> {args[0]}, {cap / 1e6:g} MB/s per connection", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
