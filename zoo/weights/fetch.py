"""Fetching one weight source: the Hugging Face Hub, a plain URL, or Google Drive.

Each fetcher returns the path of the raw file and, when the server states one, the sha256 it
should have. Hashes are checked by the caller (:mod:`zoo.weights`), since ``hf_hub_download``
stores whatever bytes it received. Every failure is a one-line :class:`FetchError`.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from zoo.errors import WeightsError, first_line
from zoo.paths import hf_hub_cache, offline, write_text_atomic, zoo_home
from zoo.registry.cards import Card, WeightSource

CHUNK = 1 << 20
TIMEOUT_S = float(os.environ.get("ZOO_DOWNLOAD_TIMEOUT", "30"))
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HTTP_LIBRARIES = {"httpx2", "httpx", "httpcore", "requests", "urllib3"}


class FetchError(WeightsError):
    """One source failed; the caller tries the next one."""


class NotCached(FetchError):
    """Offline, and this source's file is not on disk."""


@dataclass
class Fetched:
    path: Path  # the raw file, complete
    expected_sha256: str | None  # what the server says the bytes hash to (hub LFS ETag), if anything
    owned: bool  # True when zoo may delete it after conversion (URL / gdrive downloads)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def downloads_dir(card: Card) -> Path:
    return zoo_home() / "downloads" / card.name


def fetch(card: Card, source: WeightSource, force: bool = False) -> Fetched:
    """Bring ``source``'s file onto this machine (from the cache when offline)."""
    if source.hub:
        return _fetch_hub(source, force)
    if source.url:
        return _fetch_url(card, source, force)
    return _fetch_gdrive(card, source, force)


def discard(fetched: Fetched) -> None:
    """Remove a fetched file that failed verification, wherever it was stored (hub blobs too)."""
    real = Path(os.path.realpath(fetched.path))
    for path in {fetched.path, real}:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# -- reachability -----------------------------------------------------------------------------------
# A machine without DNS or network fails every request the same way, immediately; huggingface_hub
# still retries such a HEAD five times with back-off (~23 s, ten log lines). zoo tells these
# definitive failures apart from the transient ones (timeouts, resets, HTTP 5xx), which keep the
# client's retries, and reports them at once with the way out.

PROBE_TIMEOUT_S = 3.0
OFFLINE_HINT = "offline? ZOO_OFFLINE=1 works from the cache only"
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH}
_RESOLUTION_TEXT = ("name or service not known", "temporary failure in name resolution", "nodename nor servname",
                    "no address associated with hostname", "getaddrinfo failed", "name resolution")


def unreachable(exc: BaseException | None) -> str | None:
    """Why ``exc`` says the host cannot be reached at all (its name does not resolve, the connection
    is refused, there is no route), or None for failures worth retrying.

    Looks through every wrapper on the way (``urllib``'s ``URLError.reason``, the ``__cause__`` and
    ``__context__`` chains of httpx2/httpx/requests/urllib3) for the socket error, then at the
    messages, for libraries that kept only the text.
    """
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        reason = getattr(exc, "reason", None)
        exc = reason if isinstance(reason, BaseException) else (exc.__cause__ or exc.__context__)
    for err in chain:
        if isinstance(err, socket.gaierror):
            return f"name resolution failed: {err.strerror or first_line(err)}"
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, OSError) and err.errno in _NO_ROUTE:
            return (err.strerror or os.strerror(err.errno)).lower()
    for err in chain:
        text = str(err).lower()
        if any(t in text for t in _RESOLUTION_TEXT):
            return f"name resolution failed: {first_line(err)}"
        if "connection refused" in text:
            return "connection refused"
    return None


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Resolve and connect to the host of ``url`` (or to the proxy the environment names for it).

    Returns ``"HOST:PORT: why"`` when it cannot be reached at all; None when it can, or when the
    answer is slow (a slow network is left to the HTTP client's own timeouts and retries).
    ``getaddrinfo`` has no timeout of its own, so the attempt runs in a daemon thread.
    """
    target = _connect_target(url)
    if target is None:
        return None
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            socket.create_connection(target, timeout=timeout).close()
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - judged below; a thread must not raise
            outcome.append(exc)

    thread = threading.Thread(target=attempt, name="zoo-probe", daemon=True)
    thread.start()
    thread.join(timeout + 1)
    why = unreachable(outcome[0]) if outcome else None
    return f"{target[0]}:{target[1]}: {why}" if why else None


def _connect_target(url: str) -> tuple[str, int] | None:
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        proxied = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if not proxied.hostname:
            return None
        return proxied.hostname, proxied.port or (443 if proxied.scheme == "https" else 80)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: let the client report it
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


# -- Hugging Face Hub ------------------------------------------------------------------------------


def hub_endpoint() -> str:
    """The Hub endpoint huggingface_hub will use: ``HF_ENDPOINT`` read now, else its default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _fetch_hub(source: WeightSource, force: bool) -> Fetched:
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    assert source.hub and source.file  # validated by the card schema
    if not _plain_relative(source.file):
        raise FetchError(f"weights file name {source.file!r} is not a relative path inside the repository; refusing it")
    local_only = offline()
    endpoint = hub_endpoint()
    down = None if local_only else probe(endpoint)
    if down is not None:
        message = f"cannot reach the Hub at {down} ({OFFLINE_HINT}, HF_ENDPOINT=URL uses a mirror)"
        if force:
            raise FetchError(message)
        local_only = True  # what huggingface_hub does itself: fall back to a file it already has
    try:
        path = hf_hub_download(
            repo_id=source.hub,
            filename=source.file,
            revision=source.revision,
            cache_dir=hf_hub_cache(),
            endpoint=endpoint,  # read now: huggingface_hub reads HF_ENDPOINT at import
            local_files_only=local_only,
            force_download=force and not local_only,
        )
    except hf_errors.GatedRepoError:
        raise FetchError("HTTP 403: the repository is gated; accept its terms on the Hub and set HF_TOKEN") from None
    except hf_errors.RevisionNotFoundError:
        raise FetchError(f"revision {source.revision or 'main'!r} not found") from None
    except hf_errors.RemoteEntryNotFoundError:
        raise FetchError("HTTP 404: file not found in the repository") from None
    except hf_errors.RepositoryNotFoundError:
        raise FetchError("HTTP 401/404: repository not found (or private: set HF_TOKEN)") from None
    except hf_errors.LocalEntryNotFoundError as exc:
        if down is not None:
            raise FetchError(message) from None
        if local_only:
            raise NotCached("not in the Hugging Face cache") from None
        raise FetchError(_hub_cause(exc)) from None
    except hf_errors.HfHubHTTPError as exc:
        raise FetchError(_hub_http(exc)) from None
    except ValueError as exc:  # HFValidationError: a repo id or revision the Hub cannot have
        raise FetchError(f"invalid Hub reference: {first_line(exc)}") from None
    except OSError as exc:  # consistency check failed (size), disk full, ...
        raise FetchError(first_line(exc)) from None
    except Exception as exc:  # the HTTP library's own transport errors (httpx2 / httpx / requests)
        if type(exc).__module__.split(".")[0] not in _HTTP_LIBRARIES:
            raise
        why = unreachable(exc)
        raise FetchError(f"cannot reach the Hub: {why} ({OFFLINE_HINT})" if why
                         else f"download failed: {first_line(exc)}") from None
    # the blob's name in the Hub cache is the ETag, which for LFS files is the file's sha256
    blob = os.path.basename(os.path.realpath(path))
    return Fetched(Path(path), blob if _SHA256.match(blob) else None, owned=False)


def _plain_relative(name: str) -> bool:
    """A path inside a repository: relative, '/'-separated, without '.', '..' or empty segments."""
    return (bool(name) and not any(c in name for c in "\\\0") and not name.startswith("/")
            and all(part not in ("", ".", "..") for part in name.split("/")))


def _hub_http(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return f"HTTP {status}: {first_line(exc)}" if status else first_line(exc)


def _hub_cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    while cause is not None and getattr(cause, "response", None) is None and (cause.__cause__ or cause.__context__):
        cause = cause.__cause__ or cause.__context__
    if cause is not None and getattr(cause, "response", None) is not None:
        return _hub_http(cause)
    why = unreachable(exc)
    if why:
        return f"cannot reach the Hub: {why} ({OFFLINE_HINT}, HF_ENDPOINT=URL uses a mirror)"
    if cause is not None:
        return f"cannot reach the Hub: {first_line(cause)}"
    return first_line(exc)


# -- where downloads go -----------------------------------------------------------------------------


def download_path(card: Card, source: WeightSource) -> Path:
    """``downloads/<model>/<file>`` for a URL or Drive source, refusing a file name that could point
    anywhere else (a card's ``file:`` and a URL's last segment are data from outside)."""
    name = source.filename
    if (not name or name in (".", "..") or any(c in name for c in "/\\\0")
            or name.endswith((".part", ".part.json"))):
        raise FetchError(f"weights file name {name!r} is not a plain file name; refusing to store it")
    root = zoo_home() / "downloads"
    folder = root / card.name
    if folder.is_symlink() or (folder.exists() and os.path.realpath(folder) != os.path.join(os.path.realpath(root),
                                                                                              card.name)):
        raise FetchError(f"{folder} is not a folder inside {root}; refusing to write through it")
    return folder / name


# -- plain URL ------------------------------------------------------------------------------------


def _fetch_url(card: Card, source: WeightSource, force: bool) -> Fetched:
    dest = download_path(card, source)
    part = dest.with_name(dest.name + ".part")
    if force:
        _forget(part)
        dest.unlink(missing_ok=True)
    if dest.is_file():
        return Fetched(dest, None, owned=True)
    if offline():
        raise NotCached("not downloaded yet")
    assert source.url
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        download_url(source.url, part)
        os.replace(part, dest)
    except OSError as exc:  # the downloads folder itself: read-only, full, a file where a folder belongs
        raise FetchError(f"cannot write in {dest.parent}: {exc.strerror or first_line(exc)}") from None
    return Fetched(dest, None, owned=True)


MAX_RESTARTS = 3  # a server that keeps answering ranges we cannot use


@dataclass
class _Resume:
    """What the partial file holds, written beside it as ``<file>.part.json`` before its first byte."""

    url: str
    validator: str | None  # a strong ETag, else Last-Modified: what If-Range sends back
    total: int | None  # the whole file's size, as the server announced it


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _load_resume(part: Path, url: str) -> _Resume | None:
    """The partial file's record, or None when it is missing, unreadable or for another URL."""
    try:
        data = json.loads(_meta_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("url") != url:
        return None
    validator, total = data.get("validator"), data.get("total")
    if not isinstance(validator, str) or not validator or "\n" in validator or "\r" in validator:
        return None
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        return None
    return _Resume(url, validator, total)


def _save_resume(part: Path, resume: _Resume) -> None:
    write_text_atomic(_meta_path(part), json.dumps(vars(resume)))


def _forget(part: Path) -> None:
    """Drop a partial file and its record (the record first: a partial file without one is never resumed)."""
    _meta_path(part).unlink(missing_ok=True)
    part.unlink(missing_ok=True)


def _validator(headers: Message) -> str | None:
    """A strong ETag, else Last-Modified; a weak ETag cannot go into If-Range (RFC 9110, 13.1.5)."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    modified = (headers.get("Last-Modified") or "").strip()
    return modified or None


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def _usable_range(response: http.client.HTTPResponse, have: int, resume: _Resume | None) -> int | None:
    """For a 206: the size of the whole file when the part starts exactly at ``have`` and belongs to
    the same file (same validator, same total); None when it cannot be appended."""
    match = _CONTENT_RANGE.match((response.headers.get("Content-Range") or "").strip())
    if not match:
        return None
    start, end, total = (int(g) for g in match.groups())
    if start != have or end < start or end >= total:
        return None
    length = response.headers.get("Content-Length")
    if length is not None and (not length.strip().isdigit() or int(length) != end - start + 1):
        return None
    if have:
        assert resume is not None
        if resume.total is not None and total != resume.total:
            return None
        validator = _validator(response.headers)
        if validator is not None and validator != resume.validator:
            return None
    return total


def download_url(url: str, part: Path, max_stalls: int = 2) -> None:
    """GET ``url`` into ``part``, resuming what is already there only when the server proves it is
    the same file.

    The first response's validator (strong ETag, else Last-Modified) and size are recorded in
    ``<part>.json`` before the first byte is written. A resume sends ``Range`` with ``If-Range``
    and appends only a 206 whose ``Content-Range`` starts where the partial file ends, for the same
    total; anything else (a 200, another start or total, a changed validator, no validator at all)
    starts again from zero, so two versions of a file are never spliced together. A connection
    that drops mid-file is resumed until ``max_stalls`` attempts in a row bring the file no further.
    """
    stalls, restarts, best = 0, 0, 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        resume = _load_resume(part, url) if have else None
        if have and resume is None:  # nothing proves what the partial file is a prefix of
            _forget(part)
            have = 0
        response = _open(url, have, resume)
        if response is None:  # 416: the partial file is longer than the file now is
            _forget(part)
            restarts += 1
            _check_restarts(restarts, url)
            continue
        with response:
            if response.status == 206:
                total = _usable_range(response, have, resume)
                if total is None:
                    _forget(part)
                    restarts += 1
                    _check_restarts(restarts, url)
                    continue
            else:  # a whole file (a 200 to a Range request is the server saying "start over")
                length = (response.headers.get("Content-Length") or "").strip()
                total = int(length) if length.isdigit() else None
                have = 0
            if not have:
                _forget(part)
                _save_resume(part, _Resume(url, _validator(response.headers), total))
            ended_cleanly = _receive(response, part, have, total)
        size = part.stat().st_size
        if size == total or (total is None and ended_cleanly):
            _meta_path(part).unlink(missing_ok=True)
            return
        if total is not None and size > total:
            _forget(part)
            raise FetchError(f"server sent {size} bytes, more than the {total} it announced")
        if size > best:
            best, stalls = size, 0
        else:
            stalls += 1
        if stalls >= max_stalls:
            of = f"{size} of {total if total is not None else 'an unknown number of'} bytes"
            if _load_resume(part, url) is None:  # no validator: the bytes could never be resumed
                _forget(part)
                raise FetchError(f"connection closed after {of} (the server names no ETag "
                                 "or Last-Modified, so the next run starts over)")
            raise FetchError(f"connection closed after {of} (kept {part.name} to resume next time)")


def _check_restarts(restarts: int, url: str) -> None:
    if restarts > MAX_RESTARTS:
        raise FetchError(f"{url}: the server keeps answering with ranges that do not fit; gave up after "
                         f"{MAX_RESTARTS} restarts")


def _open(url: str, have: int, resume: _Resume | None) -> http.client.HTTPResponse | None:
    """Send the GET (a Range request with If-Range when resuming); None for a 416."""
    from zoo._version import __version__

    headers = {"User-Agent": f"zoo/{__version__}", "Accept-Encoding": "identity"}
    if have:
        assert resume is not None and resume.validator
        headers["Range"] = f"bytes={have}-"
        headers["If-Range"] = resume.validator
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:
            return None
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        why = unreachable(exc)
        if why:
            host = urllib.parse.urlsplit(url).hostname
            raise FetchError(f"cannot reach {host}: {why} ({OFFLINE_HINT})") from None
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot connect: {reason}") from None


def _receive(response: http.client.HTTPResponse, part: Path, have: int, total: int | None) -> bool:
    """Append the body to ``part`` (written from zero when ``have`` is 0). Returns False when a
    network error ended the body early (the caller compares sizes); a disk error is one line."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name.removesuffix(".part"),
               disable=None, leave=False)
    try:
        with open(part, "ab" if have else "wb") as fh:
            while True:
                chunk, clean = _read(response)
                if chunk:
                    fh.write(chunk)
                    bar.update(len(chunk))
                if not clean:
                    return False
                if not chunk:
                    return True
    except OSError as exc:
        raise FetchError(f"cannot write {part}: {exc.strerror or first_line(exc)} (kept what was written)") from None
    finally:
        bar.close()


def _read(response: http.client.HTTPResponse) -> tuple[bytes, bool]:
    """The next chunk (b"" at the end), and False when the connection dropped instead of ending:
    the only way to tell a cut body whose length was never announced (chunked) from a whole one."""
    try:  # read1: what has arrived; read() would drop a cut chunk's bytes with its IncompleteRead
        return response.read1(CHUNK), True
    except http.client.IncompleteRead as exc:
        return exc.partial, False
    except (ConnectionError, TimeoutError, http.client.HTTPException, OSError):
        return b"", False


# -- Google Drive ---------------------------------------------------------------------------------


def _fetch_gdrive(card: Card, source: WeightSource, force: bool) -> Fetched:
    dest = download_path(card, source)
    if force:
        dest.unlink(missing_ok=True)
    if dest.is_file():
        return Fetched(dest, None, owned=True)
    if offline():
        raise NotCached("not downloaded yet")
    try:
        import gdown
    except ImportError:
        raise FetchError("Google Drive sources need the optional package gdown: pip install 'zoo-core[gdrive]'") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        out = gdown.download(id=source.gdrive, output=str(part), quiet=False, resume=True)
    except Exception as exc:  # gdown raises many types (FileURLRetrievalError, requests errors)
        raise FetchError(f"gdown: {first_line(exc)}") from None
    if not out or not part.is_file():
        raise FetchError("gdown could not download the file (quota exceeded or not shared publicly?)")
    os.replace(part, dest)
    return Fetched(dest, None, owned=True)

