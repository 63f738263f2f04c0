"""A local HTTP server for download tests: enough of the Hugging Face Hub's file protocol for the
real ``huggingface_hub`` client, plus plain URLs with Range support, and ways to misbehave.

Plain files can also misbehave the ways a resumed download must survive: change between requests
(:meth:`Served.set_body`), name no validator or only ``Last-Modified``, ignore ``Range`` (always
200), ignore ``If-Range`` (206 even for another version), or answer a range that starts elsewhere.

Hub files are served at ``/{repo_id}/resolve/{revision}/{filename}`` (HEAD and GET) with the
headers ``hf_hub_download`` needs: ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag`` (the sha256 of
an LFS file) and ``Content-Length``. Plain files are served at ``/files/{name}``. Every request
is logged in :attr:`HubServer.log` so tests can assert what the client asked for (Range headers,
or that nothing was asked at all); :attr:`HubServer.headers` keeps every request's headers.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    body: bytes
    status: int = 200  # 403 (gated), 404, 500: every request for this file fails so
    truncate_at: int | None = None  # close the connection once this absolute offset is reached
    drop_first_at: int | None = None  # like truncate_at, but only on the first GET
    corrupt: bool = False  # flip one byte of the body; headers still describe the good bytes
    delay_s: float = 0.0  # sleep before the body (to make two downloads overlap)
    # plain files (/files/...) only:
    validators: str = "etag"  # which validators are sent: "etag", "last-modified", "both" or "none"
    etag: str | None = None  # a fixed ETag whatever the body is (a server that does not update it)
    ignore_range: bool = False  # answer every GET with 200 and the whole body
    ignore_if_range: bool = False  # honour Range even when If-Range names another version
    range_shift: int = 0  # answer Range from this many bytes earlier (Content-Range says so)
    chunked: bool = False  # no Content-Length: the body goes as one chunk (cut short by truncate_at)
    gets: int = 0
    sha256: str = field(init=False)
    modified: float = 1_700_000_000.0  # Last-Modified, as a timestamp

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.body).hexdigest()

    def set_body(self, body: bytes) -> None:
        """A new version of the file: new bytes, new ETag, a later Last-Modified."""
        self.body = body
        self.sha256 = hashlib.sha256(body).hexdigest()
        self.modified += 60

    def validator_headers(self) -> dict[str, str]:
        out = {}
        if self.validators in ("etag", "both"):
            out["ETag"] = self.etag or f'"{self.sha256}"'
        if self.validators in ("last-modified", "both"):
            out["Last-Modified"] = formatdate(self.modified, usegmt=True)
        return out


class HubServer:
    """``with HubServer() as hub: hub.add_hub('org/repo', 'w.pth', data); hub.endpoint``."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.authorizations: list[str | None] = []  # the Authorization header of every request
        self.headers: list[dict[str, str]] = []  # every request's headers
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                server._handle(self, head=True)

            def do_GET(self) -> None:
                server._handle(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- setup ------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add_hub(self, repo: str, filename: str, body: bytes, revision: str = "main", **behaviour: object) -> Served:
        served = Served(body, **behaviour)  # type: ignore[arg-type]
        self.files[f"/{repo}/resolve/{revision}/{filename}"] = served
        self.files[f"/{repo}/resolve/{COMMIT}/{filename}"] = served
        return served

    def add_url(self, name: str, body: bytes, **behaviour: object) -> tuple[str, Served]:
        served = Served(body, **behaviour)  # type: ignore[arg-type]
        self.files[f"/files/{name}"] = served
        return f"{self.endpoint}/files/{name}", served

    def requests(self, method: str | None = None) -> list[tuple[str, str, str | None]]:
        return [entry for entry in self.log if method is None or entry[0] == method]

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- serving ----------------------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler, head: bool) -> None:
        path = req.path.split("?", 1)[0]
        range_header = req.headers.get("Range")
        with self._lock:
            self.log.append(("HEAD" if head else "GET", path, range_header))
            self.authorizations.append(req.headers.get("Authorization"))
            self.headers.append(dict(req.headers.items()))
        served = self.files.get(path)
        if served is None or served.status != 200:
            status = served.status if served else 404
            code = {404: "EntryNotFound", 403: "GatedRepo"}.get(status)
            extra = {"X-Repo-Commit": COMMIT} if "/resolve/" in path else {}
            if code and "/resolve/" in path:
                extra["X-Error-Code"] = code
            self._send(req, status, b"", {**extra, "Content-Length": "0"}, head=True)
            return
        body = served.body
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if "/resolve/" in path:
            headers |= {
                "X-Repo-Commit": COMMIT,
                "ETag": f'"{served.sha256}"',
                "X-Linked-Etag": f'"{served.sha256}"',
                "X-Linked-Size": str(len(body)),
            }
        else:
            headers |= served.validator_headers()
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if_range = req.headers.get("If-Range")
        if match and if_range is not None and not served.ignore_if_range:
            if if_range not in served.validator_headers().values():  # another version: the whole file
                match = None
        if served.ignore_range:
            match = None
        if match and not head:
            start = max(0, int(match.group(1)) - served.range_shift)
            if start >= len(body):
                self._send(req, 416, b"", {"Content-Range": f"bytes */{len(body)}", "Content-Length": "0"}, head=True)
                return
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        if served.chunked and "/resolve/" not in path:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(body) - start)
        if head:
            self._send(req, 200, b"", headers, head=True)
            return
        with self._lock:
            served.gets += 1
            first = served.gets == 1
        if served.corrupt:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        stop = len(body)
        if served.truncate_at is not None:
            stop = min(stop, served.truncate_at)
        if served.drop_first_at is not None and first:
            stop = min(stop, served.drop_first_at)
        if served.delay_s:
            import time

            time.sleep(served.delay_s)
        sent = body[start:max(start, stop)]
        if "Transfer-Encoding" in headers:  # one chunk announced whole; its end (and the last chunk) only if not cut
            end = b"\r\n0\r\n\r\n" if stop >= len(body) else b""
            sent = f"{len(body) - start:x}\r\n".encode() + sent + end
        self._send(req, status, sent, headers, head=False)
        if stop < len(body):
            req.close_connection = True
            req.wfile.flush()
            req.connection.shutdown(2)  # the client sees the body end early

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        req.send_response(status)
        for key, value in headers.items():
            req.send_header(key, value)
        req.end_headers()
        if not head and body:
            req.wfile.write(body)
