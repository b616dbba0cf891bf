"""Market data from Binance's public file site (https://data.binance.vision) and from freqtrade.

- ``site``: the site's daily-file layout (``DayFile``, ``day_files``)
- ``download``: fetch, verify the sha256 before unpacking, unpack, record in ``manifest.json``,
  skip what is already there and verified
- ``info``: what a kline, aggTrades or bookTicker CSV holds (times, rows, gaps)
- ``freqtrade``: freqtrade feather/JSON OHLCV as Binance kline CSVs, one per UTC day

Plain Python: no Ray. Times are normalised to milliseconds wherever they are read.
"""

from __future__ import annotations

from swarm_ray.marketdata.download import DownloadReport, download_days, read_manifest
from swarm_ray.marketdata.freqtrade import import_freqtrade
from swarm_ray.marketdata.info import FileStats, file_stats, summarise
from swarm_ray.marketdata.site import DEFAULT_BASE_URL, DayFile, MarketDataError, day_files

__all__ = [
    "DEFAULT_BASE_URL",
    "DayFile",
    "DownloadReport",
    "FileStats",
    "MarketDataError",
    "day_files",
    "download_days",
    "file_stats",
    "import_freqtrade",
    "read_manifest",
    "summarise",
]
