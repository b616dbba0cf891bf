"""The layout of Binance's public market-data file site (https://data.binance.vision).

One zip per symbol and UTC day, with a ``.CHECKSUM`` file beside it (``<sha256>  <name>``)::

    {base}/data/spot/daily/klines/{SYM}/{interval}/{SYM}-{interval}-{DATE}.zip
    {base}/data/spot/daily/aggTrades/{SYM}/{SYM}-aggTrades-{DATE}.zip
    {base}/data/futures/um/daily/klines/{SYM}/{interval}/{SYM}-{interval}-{DATE}.zip
    {base}/data/futures/um/daily/aggTrades/{SYM}/{SYM}-aggTrades-{DATE}.zip
    {base}/data/futures/um/daily/bookTicker/{SYM}/{SYM}-bookTicker-{DATE}.zip

The site publishes no spot bookTicker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from swarm_ray.core.errors import CommandError

__all__ = [
    "DEFAULT_BASE_URL",
    "INTERVALS",
    "KINDS",
    "MARKETS",
    "DayFile",
    "MarketDataError",
    "day_files",
    "parse_date",
    "parse_symbol",
]

DEFAULT_BASE_URL = "https://data.binance.vision"

# our market name -> the site's path segment
MARKETS: dict[str, str] = {"spot": "spot", "usdm": "futures/um"}
KINDS: tuple[str, ...] = ("klines", "aggTrades", "bookTicker")
# kline intervals the site publishes as daily files (1s on spot only)
INTERVALS: dict[str, tuple[str, ...]] = {
    "spot": ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"),
    "usdm": ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"),
}
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class MarketDataError(CommandError):
    """Bad input or an unusable file; the message names the option or the file."""


@dataclass(frozen=True)
class DayFile:
    """One symbol's file of one UTC day on the site."""

    market: str
    kind: str
    symbol: str
    day: date
    interval: str | None = None

    @property
    def date(self) -> str:
        return self.day.isoformat()

    @property
    def stem(self) -> str:
        """``BTCUSDT-1m-2024-08-01`` or ``BTCUSDT-aggTrades-2024-08-01``."""
        middle = self.interval if self.kind == "klines" else self.kind
        return f"{self.symbol}-{middle}-{self.date}"

    @property
    def zip_name(self) -> str:
        return f"{self.stem}.zip"

    @property
    def csv_name(self) -> str:
        return f"{self.stem}.csv"

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        """The zip's address under ``base_url``."""
        folder = f"{self.symbol}/{self.interval}" if self.kind == "klines" else self.symbol
        market = MARKETS[self.market]
        return f"{base_url.rstrip('/')}/data/{market}/daily/{self.kind}/{folder}/{self.zip_name}"

    def checksum_url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        return self.url(base_url) + ".CHECKSUM"

    def folder(self, out: str | Path) -> Path:
        """Where its CSV goes: ``{out}/{market}/{kind}/{SYM}``."""
        return Path(out) / self.market / self.kind / self.symbol


def parse_date(value: str, option: str) -> date:
    """``value`` as a date, or ``MarketDataError`` naming ``option``."""
    try:
        if not _DATE.match(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise MarketDataError(f"{option}: {value} is not a date YYYY-MM-DD") from None


def parse_symbol(value: str) -> str:
    """``value`` upper-cased, or ``MarketDataError`` if it is not a Binance symbol."""
    sym = value.strip().upper()
    if not _SYMBOL.match(sym):
        raise MarketDataError(f"--symbols: {value!r} is not a symbol such as BTCUSDT")
    return sym


def check_request(market: str, kind: str, interval: str | None) -> str | None:
    """The interval to use (``None`` for trades and bookTicker), or ``MarketDataError``."""
    if market not in MARKETS:
        raise MarketDataError(f"--market: {market!r} is not one of {', '.join(MARKETS)}")
    if kind not in KINDS:
        raise MarketDataError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "bookTicker" and market == "spot":
        raise MarketDataError(
            "--kind bookTicker: the site publishes no spot bookTicker files; "
            "use --market usdm, or --kind aggTrades for spot"
        )
    if kind != "klines":
        if interval is not None:
            raise MarketDataError(f"--interval: applies to --kind klines only, not {kind}")
        return None
    interval = interval or "1m"
    if interval not in INTERVALS[market]:
        raise MarketDataError(
            f"--interval: {interval!r} is not a daily {market} kline interval "
            f"({', '.join(INTERVALS[market])})"
        )
    return interval


def _days(start: date, end: date) -> Iterator[date]:
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def day_files(
    market: str,
    kind: str,
    symbols: Sequence[str],
    start: str,
    end: str,
    interval: str | None = None,
) -> list[DayFile]:
    """Every (symbol, day) file from ``start`` to ``end`` inclusive, checked."""
    iv = check_request(market, kind, interval)
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last < first:
        raise MarketDataError(f"--end {end} is before --start {start}")
    syms = list(dict.fromkeys(parse_symbol(s) for s in symbols))
    if not syms:
        raise MarketDataError("--symbols: give at least one symbol")
    return [DayFile(market, kind, s, d, iv) for s in syms for d in _days(first, last)]
