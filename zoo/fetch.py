"""Fetching one weight source: the Hugging Face Hub, a plain URL, or Google Drive.

Each fetcher returns the path of the raw file and, when the server states one, the sha256 it
should have. Hashes are checked by the caller (:mod:`zoo.weights`), since ``hf_hub_download``
stores whatever bytes it received. Every failure is a one-line :class:`FetchError`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from zoo.cards import Card, WeightSource
from zoo.errors import WeightsError, first_line
from zoo.paths import hf_hub_cache, offline, zoo_home

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


# -- Hugging Face Hub ------------------------------------------------------------------------------


def _fetch_hub(source: WeightSource, force: bool) -> Fetched:
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    assert source.hub and source.file  # validated by the card schema
    local_only = offline()
    try:
        path = hf_hub_download(
            repo_id=source.hub,
            filename=source.file,
            revision=source.revision,
            cache_dir=hf_hub_cache(),
            endpoint=os.environ.get("HF_ENDPOINT") or None,  # read now: huggingface_hub reads it at import
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
        if local_only:
            raise NotCached("not in the Hugging Face cache") from None
        raise FetchError(_hub_cause(exc)) from None
    except hf_errors.HfHubHTTPError as exc:
        raise FetchError(_hub_http(exc)) from None
    except OSError as exc:  # consistency check failed (size), disk full, ...
        raise FetchError(first_line(exc)) from None
    except Exception as exc:  # the HTTP library's own transport errors (httpx2 / httpx / requests)
        if type(exc).__module__.split(".")[0] not in _HTTP_LIBRARIES:
            raise
        raise FetchError(f"download failed: {first_line(exc)}") from None
    # the blob's name in the Hub cache is the ETag, which for LFS files is the file's sha256
    blob = os.path.basename(os.path.realpath(path))
    return Fetched(Path(path), blob if _SHA256.match(blob) else None, owned=False)


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
    if cause is not None:
        return f"cannot reach the Hub: {first_line(cause)}"
    return first_line(exc)


# -- plain URL ------------------------------------------------------------------------------------


def _fetch_url(card: Card, source: WeightSource, force: bool) -> Fetched:
    dest = downloads_dir(card) / source.filename
    part = dest.with_name(dest.name + ".part")
    if force:
        part.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
    if dest.is_file():
        return Fetched(dest, None, owned=True)
    if offline():
        raise NotCached("not downloaded yet")
    dest.parent.mkdir(parents=True, exist_ok=True)
    assert source.url
    download_url(source.url, part)
    os.replace(part, dest)
    return Fetched(dest, None, owned=True)


def download_url(url: str, part: Path, max_stalls: int = 2) -> None:
    """GET ``url`` into ``part``, resuming what is already there with an HTTP Range request.

    A connection that drops mid-file is resumed (up to ``max_stalls`` attempts in a row that bring
    no new byte); what was received stays in ``part`` for the next run.
    """
    from tqdm.auto import tqdm

    from zoo._version import __version__

    stalls, restarted = 0, False
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": f"zoo/{__version__}", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have and not restarted:  # our partial file is not a prefix any more
                part.unlink()
                restarted = True
                continue
            raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(f"cannot connect: {reason}") from None
        got = 0
        with response:
            if have and response.status != 206:  # the server ignored Range: start over
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name.removesuffix(".part"),
                       disable=None, leave=False)
            try:
                with open(part, "ab" if have else "wb") as fh:
                    while chunk := _read(response):
                        fh.write(chunk)  # a disk error propagates; only network errors are judged by size
                        got += len(chunk)
                        bar.update(len(chunk))
            finally:
                bar.close()
        size = part.stat().st_size
        if total is None or size == total:
            return
        if size > total:
            part.unlink()
            raise FetchError(f"server sent {size} bytes, more than the {total} it announced")
        stalls = 0 if got else stalls + 1
        if stalls >= max_stalls:
            raise FetchError(f"connection closed after {size} of {total} bytes (kept {part.name} to resume next time)")


def _read(response: http.client.HTTPResponse) -> bytes:
    """The next chunk, or b"" when the connection dropped (the caller compares sizes)."""
    try:
        return response.read(CHUNK)
    except http.client.IncompleteRead as exc:
        return exc.partial
    except (ConnectionError, TimeoutError, http.client.HTTPException, OSError):
        return b""


# -- Google Drive ---------------------------------------------------------------------------------


def _fetch_gdrive(card: Card, source: WeightSource, force: bool) -> Fetched:
    dest = downloads_dir(card) / source.filename
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

