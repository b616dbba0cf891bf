"""``swarm-ray data``: download days from Binance's market-data site, inspect CSVs, import
freqtrade OHLCV files."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DOWNLOAD_HELP = """\
Files go to {out}/{spot|usdm}/{kind}/{SYMBOL}/ with a manifest.json. Every zip's sha256 is
checked against the site's .CHECKSUM before it is unpacked; days already downloaded and verified
are skipped. Exit code: 0 all days there, 1 a day failed (bad checksum, bad zip, connection),
3 only missing days (the site has no such day yet).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="download, inspect and import market data",
        description="Binance's public market-data files: download, inspect, import.",
    )
    cmds = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    d = cmds.add_parser(
        "download",
        help="download daily files from data.binance.vision",
        description="Download daily kline, aggTrades or bookTicker files from Binance's "
        "public market-data site.",
        epilog=DOWNLOAD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--market", choices=("spot", "usdm"), default="spot", help="default spot")
    d.add_argument(
        "--kind", choices=("klines", "aggTrades", "bookTicker"), default="klines",
        help="default klines (bookTicker: usdm only)",
    )  # fmt: skip
    d.add_argument("--symbols", nargs="+", required=True, metavar="SYMBOL", help="e.g. BTCUSDT")
    d.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first UTC day")
    d.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last UTC day (included)")
    d.add_argument("--interval", help="kline interval (default 1m; klines only)")
    d.add_argument("--out", default="data", metavar="DIR", help="output root (default data)")
    d.add_argument("--base-url", help="the site or a mirror (default https://data.binance.vision)")
    d.add_argument("--retries", type=int, default=3, help="retries of a dropped download (3)")
    d.add_argument("--backoff", type=float, default=1.0, help="first retry delay, s, doubling (1)")
    d.add_argument("--timeout", type=float, default=60.0, help="network timeout, s (60)")
    d.add_argument("--json", action="store_true", help="print one JSON object last, no progress")
    d.set_defaults(func=run_download)

    i = cmds.add_parser(
        "info",
        help="symbol, kind, first/last time, rows and gaps of CSVs",
        description="Summarise a kline, aggTrades or bookTicker CSV, or a folder of them "
        "(searched recursively; one summary per symbol, kind and interval).",
    )
    i.add_argument("path", metavar="PATH", help="a CSV file or a folder of them")
    i.add_argument(
        "--json", action="store_true",
        help="print JSON: an object for a file, a list of objects for a folder",
    )  # fmt: skip
    i.set_defaults(func=run_info)

    f = cmds.add_parser(
        "import-freqtrade",
        help="freqtrade feather/JSON OHLCV -> Binance kline CSVs",
        description="Split a freqtrade OHLCV file (.feather or .json) into one Binance kline "
        "CSV per UTC day, named SYMBOL-INTERVAL-YYYY-MM-DD.csv.",
    )
    f.add_argument("file", metavar="FILE", help="a freqtrade .feather or .json file")
    f.add_argument("--symbol", help="symbol (default: from the file name, BTC_USDT -> BTCUSDT)")
    f.add_argument("--out", required=True, metavar="DIR", help="folder for the CSVs")
    f.add_argument("--json", action="store_true", help="print the files written as JSON")
    f.set_defaults(func=run_import)


def _check_url(url: str) -> str:
    from swarm_ray.marketdata.site import MarketDataError

    if not url.startswith(("http://", "https://")):
        raise MarketDataError(f"--base-url: {url!r} is not an http(s) address")
    return url


def run_download(args: argparse.Namespace) -> int:
    from swarm_ray.marketdata.download import download_days
    from swarm_ray.marketdata.site import DEFAULT_BASE_URL, MarketDataError, day_files

    days = day_files(args.market, args.kind, args.symbols, args.start, args.end, args.interval)
    if args.retries < 0:
        raise MarketDataError(f"--retries: {args.retries} is negative")
    if args.backoff < 0 or args.timeout <= 0:
        raise MarketDataError("--backoff must be >= 0 and --timeout > 0")
    base = _check_url(args.base_url or DEFAULT_BASE_URL)
    with _Progress(len(days), quiet=args.json) as on_day:
        report = download_days(
            days, args.out, base_url=base, retries=args.retries, backoff=args.backoff,
            timeout=args.timeout, on_day=on_day,
        )  # fmt: skip
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return report.exit_code
    print(
        f"{len(report.downloaded)} downloaded, {len(report.skipped)} already there, "
        f"{len(report.missing)} missing, {len(report.failed)} failed; under {args.out}"
    )
    if report.missing:
        names = ", ".join(f"{m['symbol']} {m['date']}" for m in report.missing)
        print(f"missing (the site has no such file): {names}", file=sys.stderr)
    for item in report.failed:
        print(f"failed: {item['symbol']} {item['date']}: {item['error']}", file=sys.stderr)
    return report.exit_code


class _Progress:
    """A progress bar over days, on stderr (nothing with --json)."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self._progress: Any = None

    def __enter__(self):
        if self.quiet:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            console=Console(stderr=True), transient=True,
        )  # fmt: skip
        self._progress.start()
        task = self._progress.add_task("downloading", total=self.total)

        def step(day: Any, status: str) -> None:
            self._progress.update(task, advance=1, description=f"{day.symbol} {day.date} {status}")

        return step

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def run_info(args: argparse.Namespace) -> int:
    from swarm_ray.marketdata.info import summarise

    result = summarise(args.path)
    items = result if isinstance(result, list) else [result]
    if args.json:
        out = [s.as_dict() for s in items]
        print(json.dumps(out if isinstance(result, list) else out[0], indent=2))
        return 0
    for s in items:
        d = s.as_dict()
        what = f"{d['kind']} {d['interval']}" if d.get("interval") else d["kind"]
        unit = "" if s.time_unit == "ms" else f" (times in {s.time_unit} in the file)"
        gap_word = "missing bars" if s.kind == "klines" else "gaps over 60 s"
        print(
            f"{d['symbol'] or '?'} {what}: {d['first']} .. {d['last']}, {d['rows']} rows, "
            f"{d['gaps']} {gap_word}, {len(d['files'])} file(s){unit}"
        )
    return 0


def run_import(args: argparse.Namespace) -> int:
    from swarm_ray.marketdata.freqtrade import import_freqtrade

    written = import_freqtrade(args.file, args.out, args.symbol)
    if args.json:
        print(json.dumps({"files": [str(p) for p in written]}, indent=2))
    else:
        print(f"{len(written)} day file(s) written to {args.out}")
    return 0
