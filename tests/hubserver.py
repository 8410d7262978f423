"""A real Hugging Face-compatible server for the tests: olah, serving git repos built here, behind a proxy.

olah (a self-hosted Hub mirror from PyPI) serves `<mirrors>/models/<org>/<repo>` git repos in offline mode; a
git-LFS pointer whose object sits in `.git/lfs/objects/aa/bb/<sha256>` is served with that sha256 as its
ETag, like the Hub. olah ignores `Range`, so the client talks to `FaultProxy`, which answers ranges itself
and injects the failures a real network (or a misbehaving server) has: error codes on the metadata request or
on the download alone, a connection cut mid-file, slow bytes, a stall, a flipped byte, more or fewer bytes
than announced, a range ignored, a redirect to another host, another commit than the one asked for.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_repo(
    mirrors: Path,
    repo: str,
    lfs_files: dict[str, bytes],
    plain_files: dict[str, str] | None = None,
    repo_type: str = "model",
) -> str:
    """A git repo on branch main holding LFS pointers (objects in .git/lfs) and plain files; returns its commit."""
    path = mirrors / f"{repo_type}s" / repo
    path.mkdir(parents=True)
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".gitattributes").write_text(
        "*.bin filter=lfs diff=lfs merge=lfs -text\n*.tar filter=lfs diff=lfs merge=lfs -text\n"
    )
    return _commit(path, lfs_files, plain_files if plain_files is not None else {"README.md": f"# {repo}\n"})


def add_commit(mirrors: Path, repo: str, lfs_files: dict[str, bytes], repo_type: str = "model") -> str:
    """A new commit on main of a repo `build_repo` made, changing these LFS files; returns the commit."""
    return _commit(mirrors / f"{repo_type}s" / repo, lfs_files, {})


def _commit(path: Path, lfs_files: dict[str, bytes], plain_files: dict[str, str]) -> str:
    for name, data in lfs_files.items():
        sha = hashlib.sha256(data).hexdigest()
        obj = path / ".git" / "lfs" / "objects" / sha[:2] / sha[2:4] / sha
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(data)
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n")
    for name, text in plain_files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    subprocess.run([*GIT, "-C", str(path), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(path), "commit", "-q", "-m", "checkpoint"], check=True)
    return subprocess.run(
        [*GIT, "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def olah_server(workdir: Path) -> Iterator[tuple[str, Path]]:
    """Start olah on a free port; yields (its URL, the mirrors folder to build repos in)."""
    port = free_port()
    mirrors = workdir / "mirrors"
    mirrors.mkdir(parents=True)
    config = workdir / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{workdir / "repos"}"\n'
        'mirror-scheme = "http"\n'
        f'mirror-netloc = "127.0.0.1:{port}"\nmirror-lfs-netloc = "127.0.0.1:{port}"\n'
        f'mirrors-path = ["{mirrors}"]\n'
        "[accessibility]\noffline = true\n"
    )
    olah_cli = Path(sys.executable).with_name("olah-cli")
    log = open(workdir / "olah.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(olah_cli), "-c", str(config)], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"olah did not start: {(workdir / 'olah.log').read_text()}") from None
                time.sleep(0.2)
        yield url, mirrors
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@dataclass
class Faults:
    """What the proxy does to the next requests; tests set these and read the counters."""

    statuses: list[int] = field(default_factory=list)  # answer the next file requests with these codes
    get_statuses: list[int] = field(default_factory=list)  # ... the next file downloads (GET) only
    head_statuses: list[int] = field(default_factory=list)  # ... the next metadata requests (HEAD) only
    hang_s: float = 0.0  # accept file requests, then say nothing for this long
    hang_method: str | None = None  # ... only requests of this method (HEAD or GET)
    extra_bytes: int = 0  # send this many bytes more than the file (and announce them)
    short_by: int = 0  # announce the whole file but send this many bytes less, then close (once)
    redirect_to: str | None = None  # answer downloads with a 302 to this origin (another host), same path
    cut_after: int | None = None  # close the connection after sending this many body bytes (once)
    chunk_delay_s: float = 0.0  # pause after each 64 KiB of body
    flip_byte_at: int | None = None  # corrupt the byte at this offset of the file
    stall_once_s: float = 0.0  # wait this long before the next file body (once)
    etag: str | None = None  # send this ETag instead of the real one
    honour_range: bool = True
    wrong_range_once: bool = False  # answer the next range request with a Content-Range one byte off (once)
    long_by_once: int = 0  # send this many bytes more than the next range's Content-Range says (once)
    every_time: bool = False  # short_by, cut_after, wrong_range_once and long_by_once: every request, not once
    repo_commit: str | None = None  # send this X-Repo-Commit on file requests instead of the real one
    head_without_body: bool = False  # answer an injected status on a HEAD request without a body, as HTTP says
    short_announced: bool = False  # with short_by: announce the shortened length (a whole answer, too short)
    body_bytes: int = 0  # body bytes sent for file downloads
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    authorizations: list[str | None] = field(default_factory=list)  # the Authorization header of each file request


class FaultProxy:
    """An HTTP proxy in front of olah that honours Range and injects faults into /resolve/ requests."""

    def _upstream(
        self, method: str, path: str, headers: dict[str, str], is_file: bool
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """olah's answer. A file's body is kept by its path and ETag (asked for with a HEAD first): ranges of one
        file, each a request of its own, then cost one read of it from olah, not one each."""

        def ask(how: str) -> tuple[int, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(self.upstream, timeout=30)
            connection.request(how, path, headers=headers)
            answer = connection.getresponse()
            found = (answer.status, answer.getheaders(), answer.read())
            connection.close()
            return found

        if not (is_file and method == "GET"):
            return ask(method)
        status, described, _ = ask("HEAD")
        etag = next((v for k, v in described if k.lower() in ("x-linked-etag", "etag")), None)
        key = (path, etag)
        with self.lock:
            kept = self._bodies.get(key) if status == 200 and etag else None
        if kept is not None:
            return kept
        found = ask("GET")
        if found[0] == 200 and etag:
            with self.lock:
                self._bodies[key] = found
        return found

    CHUNK = 64 * 1024

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.faults = Faults()
        self.lock = threading.Lock()
        self._bodies: dict[tuple[str, str | None], tuple[int, list[tuple[str, str]], bytes]] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                proxy.handle(self, "HEAD")

            def do_GET(self) -> None:  # noqa: N802
                proxy.handle(self, "GET")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that hang up mid-answer are part of the tests

        self.server = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> Faults:
        with self.lock:
            self.faults = Faults()
            return self.faults

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        faults = self.faults
        range_header = request.headers.get("Range")
        if "/cdn/" in request.path:  # the other host of `redirect_to`: serves the file, records who asked
            request.path = request.path.replace("/cdn/", "/resolve/", 1)
            with self.lock:
                faults.redirect_to = None
        is_file = "/resolve/" in request.path
        with self.lock:
            faults.requests.append((method, request.path, range_header))
            if is_file:
                faults.authorizations.append(request.headers.get("Authorization"))
            status = faults.statuses.pop(0) if is_file and faults.statuses else None
            queue = faults.get_statuses if method == "GET" else faults.head_statuses
            if status is None and is_file and queue:
                status = queue.pop(0)
        if is_file and faults.hang_s and faults.hang_method in (None, method):
            time.sleep(faults.hang_s)
            request.close_connection = True
            return
        if is_file and method == "GET" and faults.redirect_to is not None:
            request.send_response(302)
            request.send_header("Location", faults.redirect_to + request.path.replace("/resolve/", "/cdn/", 1))
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        if status is not None:
            body = b"injected failure"
            request.send_response(status)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            if not (method == "HEAD" and faults.head_without_body):
                request.wfile.write(body)
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "range", "accept-encoding")}
        status_code, upstream_headers, body = self._upstream(method, request.path, headers, is_file)
        dropped = ("content-length", "transfer-encoding", "connection", "date", "server")
        keep = {k: v for k, v in upstream_headers if k.lower() not in dropped}
        if faults.etag is not None and is_file:
            keep = {k: (faults.etag if k.lower() in ("etag", "x-linked-etag") else v) for k, v in keep.items()}
        if faults.repo_commit is not None and is_file:
            keep = {k: v for k, v in keep.items() if k.lower() != "x-repo-commit"}
            keep["X-Repo-Commit"] = faults.repo_commit
        if method == "HEAD" or not is_file or status_code != 200:
            request.send_response(status_code)
            for key, value in keep.items():
                request.send_header(key, value)
            given = dict((k.lower(), v) for k, v in upstream_headers)
            length = given.get("content-length") if method == "HEAD" else str(len(body))
            request.send_header("Content-Length", length or "0")
            request.end_headers()
            if method == "GET":
                request.wfile.write(body)
            return
        if faults.flip_byte_at is not None and faults.flip_byte_at < len(body):
            at = faults.flip_byte_at
            body = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]
        body += b"\0" * faults.extra_bytes
        start = 0
        if range_header and faults.honour_range and range_header.startswith("bytes="):
            first, _, last = range_header[6:].partition("-")
            start = int(first)
            end = int(last) if last else len(body) - 1
            with self.lock:
                shift, longer = int(faults.wrong_range_once), faults.long_by_once
                if not faults.every_time:
                    faults.wrong_range_once, faults.long_by_once = False, 0
            request.send_response(206)
            request.send_header("Content-Range", f"bytes {start + shift}-{end}/{len(body)}")
            payload = body[start : end + 1 + longer]
        else:
            request.send_response(200)
            payload = body
        for key, value in keep.items():
            request.send_header(key, value)
        with self.lock:
            short = faults.short_by
            if not faults.every_time:
                faults.short_by = 0  # once
        if short and faults.short_announced:
            payload = payload[: max(len(payload) - short, 0)]
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if short and not faults.short_announced:
            payload = payload[: max(len(payload) - short, 0)]
            request.close_connection = True
        with self.lock:
            stall, faults.stall_once_s = faults.stall_once_s, 0.0
        time.sleep(stall)
        sent = 0
        try:
            for offset in range(0, len(payload), self.CHUNK):
                piece = payload[offset : offset + self.CHUNK]
                with self.lock:
                    cut = faults.cut_after
                    if cut is not None and sent + len(piece) > cut:
                        piece = piece[: cut - sent]
                        if not faults.every_time:
                            faults.cut_after = None
                    else:
                        cut = None
                request.wfile.write(piece)
                sent += len(piece)
                with self.lock:
                    faults.body_bytes += len(piece)
                if cut is not None:
                    request.wfile.flush()
                    request.connection.shutdown(socket.SHUT_RDWR)
                    request.close_connection = True
                    return
                if faults.chunk_delay_s:
                    time.sleep(faults.chunk_delay_s)
        except (BrokenPipeError, ConnectionResetError):
            request.close_connection = True
