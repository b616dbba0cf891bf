"""A fake of Binance's market-data file site (data.binance.vision) on loopback.

It serves the site's daily layout: spot and USD-M 1m klines built from the bundled
``data/binance-spot-1m`` days (USD-M files with a header row, as the site's), synthetic aggTrades
(two trades a minute at the kline's close) and USD-M bookTicker (one quote every 30 s), each as
a zip with its ``.CHECKSUM`` beside it. Other symbols, days and intervals answer 404.

Faults (``SiteFault``), for a symbol and/or day: ``missing`` (404), ``bad_checksum`` (the
.CHECKSUM names another sha256), ``truncated`` (half the zip served as if whole, the checksum of
the whole), ``bad_zip`` (half the zip, with a checksum that matches it), ``drop`` (the connection
closed after half the body; ``times`` drops, then served whole), ``microseconds`` (the day's times
in microseconds, as the site's spot files from 2025-01-01).

Every request's path is in ``requests``; ``count(".zip")`` counts those matching.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.fakes.loopback import LoopbackServer

KLINES = Path(__file__).resolve().parents[2] / "data" / "binance-spot-1m"

FAULTS = ("missing", "bad_checksum", "truncated", "bad_zip", "drop", "microseconds")
_PATH = re.compile(
    r"^/data/(?P<market>spot|futures/um)/daily/(?P<kind>klines|aggTrades|bookTicker)/"
    r"(?P<sym>[A-Z0-9]+)/(?:(?P<iv>[0-9a-z]+)/)?(?P<stem>[^/]+)\.zip(?P<checksum>\.CHECKSUM)?$"
)
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
BOOK_HEADER = (
    "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time"
)


@dataclass
class SiteFault:
    """One misbehaviour for the files of ``symbol`` on ``date`` (``None``: any)."""

    kind: str
    date: str | None = None
    symbol: str | None = None
    times: int | None = None  # for ``drop``: how many requests to drop (None: all)

    def __post_init__(self) -> None:
        assert self.kind in FAULTS, self.kind

    def matches(self, symbol: str, date: str) -> bool:
        return self.symbol in (None, symbol) and self.date in (None, date)


def _kline_rows(date: str) -> list[list[str]] | None:
    f = KLINES / f"BTCUSDT-1m-{date}.csv"
    if not f.is_file():
        return None
    return [line.split(",") for line in f.read_text().splitlines() if line]


def _micro(value: str, end: bool = False) -> str:
    """A millisecond time as the site's microsecond one (an end time ends at ...999999)."""
    return str(int(value) * 1000 + (999 if end else 0))


def build_csv(market: str, kind: str, date: str, micro: bool = False) -> str | None:
    """The day's CSV as the site publishes it for BTCUSDT, or ``None`` (no such file)."""
    rows = _kline_rows(date)
    if rows is None:
        return None
    futures = market == "futures/um"
    out: list[str] = []
    if kind == "klines":
        if futures:
            out.append(KLINE_HEADER)
        for r in rows:
            if micro:
                r = [_micro(r[0]), *r[1:6], _micro(r[6], end=True), *r[7:]]
            out.append(",".join(r))
    elif kind == "aggTrades":
        if futures:
            out.append(AGG_HEADER)
        for i, r in enumerate(rows):
            for k, offset in enumerate((500, 30_500)):
                t = int(r[0]) + offset
                ts = _micro(str(t)) if micro else str(t)
                agg = 2 * i + k + 1
                row = [str(agg), r[4], "0.01000000", str(agg * 3), str(agg * 3 + 2), ts]
                row += ["True" if k else "False"] + ([] if futures else ["True"])
                out.append(",".join(row))
    elif kind == "bookTicker" and futures:
        out.append(BOOK_HEADER)
        for i, r in enumerate(rows):
            for k, offset in enumerate((0, 30_000)):
                t = int(r[0]) + offset
                ts = _micro(str(t)) if micro else str(t)
                bid = float(r[4])
                out.append(f"{2 * i + k + 1},{bid:.2f},1.5,{bid + 0.1:.2f},2.5,{ts},{t + 3}")
    else:
        return None
    return "\n".join(out) + "\n"


def make_zip(csv_name: str, text: str) -> bytes:
    buf = io.BytesIO()
    info = zipfile.ZipInfo(csv_name, date_time=(2024, 1, 1, 0, 0, 0))  # same bytes every time
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(info, text)
    return buf.getvalue()


@dataclass
class FakeDataSite(LoopbackServer):
    """``with FakeDataSite() as site: download(..., base_url=site.url)``."""

    symbols: tuple[str, ...] = ("BTCUSDT",)
    faults: list[SiteFault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.requests: list[str] = []
        self._drops: dict[int, int] = {}
        self._lock = threading.Lock()

    def count(self, contains: str = "") -> int:
        """Requests whose path contains ``contains``."""
        with self._lock:
            return sum(contains in p for p in self.requests)

    def _fault(self, kind: str, symbol: str, date: str) -> SiteFault | None:
        return next((f for f in self.faults if f.kind == kind and f.matches(symbol, date)), None)

    def _take_drop(self, symbol: str, date: str) -> bool:
        f = self._fault("drop", symbol, date)
        if f is None:
            return False
        with self._lock:
            n = self._drops.get(id(f), 0)
            if f.times is not None and n >= f.times:
                return False
            self._drops[id(f)] = n + 1
        return True

    def answer(self, path: str) -> tuple[int, bytes, str | None]:
        """(status, body, how to misbehave: None, "drop")."""
        m = _PATH.match(path)
        if not m:
            return 404, b"not found", None
        market, kind, sym, iv = m["market"], m["kind"], m["sym"], m["iv"]
        date = m["stem"][-10:]
        middle = iv if kind == "klines" else kind
        if m["stem"] != f"{sym}-{middle}-{date}" or (kind == "klines") != (iv is not None):
            return 404, b"not found", None
        if sym not in self.symbols or (kind == "klines" and iv != "1m"):
            return 404, b"not found", None
        if self._fault("missing", sym, date):
            return 404, b"not found", None
        micro = self._fault("microseconds", sym, date) is not None
        text = build_csv(market, kind, date, micro)
        if text is None:
            return 404, b"not found", None
        whole = make_zip(f"{m['stem']}.csv", text)
        served = whole
        if self._fault("truncated", sym, date) or self._fault("bad_zip", sym, date):
            served = whole[: len(whole) // 2]
        if m["checksum"]:
            summed = served if self._fault("bad_zip", sym, date) else whole
            if self._fault("bad_checksum", sym, date):
                summed = b"not the zip"
            return 200, f"{hashlib.sha256(summed).hexdigest()}  {m['stem']}.zip\n".encode(), None
        return 200, served, "drop" if self._take_drop(sym, date) else None

    def start(self) -> str:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                with site._lock:
                    site.requests.append(self.path)
                status, body, how = site.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if how == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        return self.serve(Handler)
