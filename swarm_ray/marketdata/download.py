"""Download daily files from Binance's market-data site: fetch, verify, unpack, record.

For each (symbol, day): fetch the ``.CHECKSUM`` and the zip (into a hidden temporary file in the
output folder), check the zip's sha256 against the published one before opening it, unpack its
CSV to another temporary file and rename it into place, then record it in the folder's
``manifest.json``. A day already recorded there, whose CSV is present with the recorded sha256,
is skipped. Whatever goes wrong with one day, nothing of it is left behind and the other days go
on: a 404 (the site has no such day) is reported as missing, anything else as failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarm_ray.marketdata.info import file_stats, iso
from swarm_ray.marketdata.site import DEFAULT_BASE_URL, DayFile, MarketDataError

__all__ = ["DownloadReport", "download_days", "read_manifest", "sha256_file"]

MANIFEST = "manifest.json"
_CHUNK = 1 << 16
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
USER_AGENT = "swarm-ray data download"


class Missing(Exception):
    """The site answered 404: it has no such file (yet)."""


class DayFailed(Exception):
    """This day cannot be had cleanly; the message says why and names the file."""


class _Transient(Exception):
    """Worth another try: a dropped connection, a short body, a timeout, a 5xx."""


@dataclass
class DownloadReport:
    """What one run did, day by day."""

    out: str
    downloaded: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0: all there; 1: a day failed; 3: only missing days (the site has no such day)."""
        if self.failed:
            return 1
        return 3 if self.missing else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "downloaded": self.downloaded,
            "skipped": self.skipped,
            "missing": self.missing,
            "failed": self.failed,
            "out": self.out,
        }


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A folder's manifest (``{"files": {csv name: entry}}``), empty if it has none."""
    p = Path(folder) / MANIFEST
    if not p.is_file():
        return {"files": {}}
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise MarketDataError(
            f"{p}: unreadable manifest ({exc}); delete it to start over"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise MarketDataError(f"{p}: not a manifest (no 'files' object); delete it to start over")
    return data


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    data["files"] = dict(sorted(data["files"].items()))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{MANIFEST}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, folder / MANIFEST)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _verified(folder: Path, day: DayFile, manifest: dict[str, Any]) -> bool:
    entry = manifest["files"].get(day.csv_name)
    csv = folder / day.csv_name
    return bool(entry) and csv.is_file() and sha256_file(csv) == entry.get("csv_sha256")


def _open(url: str, timeout: float) -> Any:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise Missing(url) from None
        if exc.code >= 500 or exc.code == 429:
            raise _Transient(f"{url}: http {exc.code}") from None
        raise DayFailed(f"{url}: http {exc.code}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Transient(f"{url}: {getattr(exc, 'reason', exc)}") from None


def _get(url: str, sink: Callable[[bytes], None], timeout: float) -> None:
    """Stream ``url``'s body into ``sink``; a body shorter than its Content-Length is a
    dropped connection."""
    with _open(url, timeout) as resp:
        length = resp.headers.get("Content-Length")
        got = 0
        try:
            while chunk := resp.read(_CHUNK):
                sink(chunk)
                got += len(chunk)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # reset, timeout
            raise _Transient(f"{url}: connection dropped after {got} bytes ({exc})") from None
        if length is not None and got != int(length):
            raise _Transient(f"{url}: connection dropped after {got} of {length} bytes")


def _with_retries(what: Callable[[], Any], retries: int, backoff: float) -> Any:
    for attempt in range(retries + 1):
        try:
            return what()
        except _Transient as exc:
            if attempt == retries:
                raise DayFailed(f"{exc} (gave up after {retries + 1} tries)") from None
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")


def _published_sha256(day: DayFile, base_url: str, timeout: float) -> str:
    buf = bytearray()
    _get(day.checksum_url(base_url), buf.extend, timeout)
    text = buf.decode("utf-8", "replace").split()
    if not text or not _HEX64.match(text[0]):
        raise DayFailed(f"{day.zip_name}.CHECKSUM: not '<sha256>  <file name>'")
    return text[0].lower()


def _fetch_zip(day: DayFile, base_url: str, tmp: Path, timeout: float) -> str:
    """Download the zip into ``tmp`` (truncated first); its sha256."""
    h = hashlib.sha256()
    with tmp.open("wb") as f:

        def sink(chunk: bytes) -> None:
            f.write(chunk)
            h.update(chunk)

        _get(day.url(base_url), sink, timeout)
    return h.hexdigest()


def _unpack(day: DayFile, zip_path: Path, csv_tmp: Path) -> str:
    """The zip's one CSV into ``csv_tmp``; its sha256."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            members = [n for n in z.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise DayFailed(f"{day.zip_name}: expected one CSV inside, found {members}")
            h = hashlib.sha256()
            with z.open(members[0]) as src, csv_tmp.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    h.update(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise DayFailed(f"{day.zip_name}: not a readable zip ({exc})") from None
    return h.hexdigest()


def fetch_day(
    day: DayFile,
    folder: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Download, verify and unpack one day into ``folder``; its manifest entry. Raises
    ``Missing`` or ``DayFailed``, leaving no file of that day behind."""
    folder.mkdir(parents=True, exist_ok=True)
    published = _with_retries(lambda: _published_sha256(day, base_url, timeout), retries, backoff)
    tmp_zip = Path(tempfile.mkstemp(dir=folder, prefix=f".{day.zip_name}.", suffix=".part")[1])
    tmp_csv = Path(tempfile.mkstemp(dir=folder, prefix=f".{day.csv_name}.", suffix=".part")[1])
    try:
        zip_sha = _with_retries(
            lambda: _fetch_zip(day, base_url, tmp_zip, timeout), retries, backoff
        )
        if zip_sha != published:
            raise DayFailed(
                f"{day.zip_name}: checksum mismatch (sha256 {zip_sha}, the site's .CHECKSUM "
                f"says {published}); nothing was kept"
            )
        csv_sha = _unpack(day, tmp_zip, tmp_csv)
        try:
            stats = file_stats(tmp_csv, name=day.csv_name)
        except MarketDataError as exc:
            raise DayFailed(f"{day.csv_name}: {exc}") from None
        os.replace(tmp_csv, folder / day.csv_name)
    finally:
        for p in (tmp_zip, tmp_csv):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    return {
        "date": day.date,
        "url": day.url(base_url),
        "zip_sha256": zip_sha,
        "csv_sha256": csv_sha,
        "rows": stats.rows,
        "first": iso(stats.first_ms),
        "last": iso(stats.last_ms),
        "time_unit": stats.time_unit,
        "gaps": stats.gaps,
        "downloaded_at": now_iso(),
    }


def download_days(
    days: Sequence[DayFile],
    out: str | os.PathLike[str],
    *,
    base_url: str = DEFAULT_BASE_URL,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    on_day: Callable[[DayFile, str], None] | None = None,
) -> DownloadReport:
    """Fetch every day not already downloaded and verified under ``out``; ``on_day(day,
    status)`` after each (status: downloaded, skipped, missing or failed)."""
    report = DownloadReport(out=str(out))
    manifests: dict[Path, dict[str, Any]] = {}
    for day in days:
        folder = day.folder(out)
        if folder not in manifests:
            manifests[folder] = read_manifest(folder)
        manifest = manifests[folder]
        item = {"symbol": day.symbol, "date": day.date}
        if _verified(folder, day, manifest):
            report.skipped.append({**item, "file": str(folder / day.csv_name)})
            status = "skipped"
        else:
            try:
                entry = fetch_day(
                    day, folder, base_url=base_url, retries=retries, backoff=backoff,
                    timeout=timeout,
                )  # fmt: skip
            except Missing:
                report.missing.append({**item, "url": day.url(base_url)})
                status = "missing"
            except DayFailed as exc:
                report.failed.append({**item, "file": day.zip_name, "error": str(exc)})
                status = "failed"
            else:
                manifest.setdefault("market", day.market)
                manifest.setdefault("kind", day.kind)
                manifest.setdefault("symbol", day.symbol)
                manifest["files"][day.csv_name] = entry
                _write_manifest(folder, manifest)
                report.downloaded.append({**item, "file": str(folder / day.csv_name)})
                status = "downloaded"
        if on_day is not None:
            on_day(day, status)
    return report


def now_iso() -> str:
    """The current UTC time, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
