"""A fake Binance market-data websocket on loopback, for python-binance's ``BinanceSocketManager``.

It serves the two partial-book-depth streams the adapter subscribes to, at the paths
python-binance builds from a stream root (``ExchangeConfig.ws_url``):

- spot: ``<root>/ws/<symbol>@depth<N>``, raw payload
  ``{"lastUpdateId": .., "bids": [[p, q], ..], "asks": [[p, q], ..]}``;
- USD-M futures: ``<root>/public/stream?streams=<symbol>@depth<N>``, combined-stream envelope
  ``{"stream": "<symbol>@depth<N>", "data": {"e": "depthUpdate", "E": .., "T": .., "s": ..,
  "U": .., "u": .., "pu": .., "b": [[p, q], ..], "a": [[p, q], ..]}}``.

Any other path is refused with close code 1008. Test controls: ``set_book`` (what is streamed),
``pause``/``resume`` (stop sending but keep the connection open), ``drop`` (abort every open
connection, as a venue restart does) and ``refuse`` (reject new connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Response


class FakeBinanceStream:
    def __init__(self, interval_s: float = 0.05, levels: int = 5) -> None:
        self.interval_s = interval_s
        self.levels = levels
        self.books: dict[str, tuple[Decimal, Decimal]] = {
            "BTCUSDT": (Decimal("61000.00"), Decimal("61000.50")),
            "ETHUSDT": (Decimal("3100.00"), Decimal("3100.10")),
        }
        self.paths: list[str] = []  # every accepted connection's request path, in order
        self.sent = 0
        self.refused = 0
        self._open: set[ServerConnection] = set()
        self._sending = threading.Event()
        self._sending.set()
        self._refuse = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> str:
        ready = threading.Event()

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(
                self._handler,
                "127.0.0.1",
                0,
                process_request=self._process_request,
                compression=None,
                ping_interval=None,
                close_timeout=0.2,
            ) as server:
                self._port = next(iter(server.sockets)).getsockname()[1]
                ready.set()
                await self._stop.wait()
                for conn in list(self._open):
                    conn.transport.abort()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(main())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-binance-ws", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("fake websocket server did not start")
        return self.url

    @property
    def url(self) -> str:
        """The stream root, as ``ExchangeConfig.ws_url`` takes it."""
        return f"ws://127.0.0.1:{self._port}"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeBinanceStream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- test controls

    def set_book(self, symbol: str, bid: str, ask: str) -> None:
        with self._lock:
            self.books[symbol] = (Decimal(bid), Decimal(ask))

    def pause(self) -> None:
        """Keep connections open but send nothing (a silent, stale stream)."""
        self._sending.clear()

    def resume(self) -> None:
        self._sending.set()

    def refuse(self, on: bool = True) -> None:
        """Reject new connections with HTTP 503 (reconnects fail)."""
        self._refuse = on

    def drop(self) -> None:
        """Abort every open connection without a closing handshake."""
        loop = self._loop
        if loop is None:
            return

        def abort() -> None:
            for conn in list(self._open):
                conn.transport.abort()

        loop.call_soon_threadsafe(abort)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    # ---------------------------------------------------------------- serving

    def _process_request(self, conn: ServerConnection, request: Any) -> Response | None:
        if self._refuse:
            self.refused += 1
            return conn.respond(503, "stream unavailable\n")
        return None

    @staticmethod
    def _route(path: str) -> tuple[bool, str, int] | None:
        """(futures, SYMBOL, depth) for a path python-binance builds, else None."""
        parts = urlsplit(path)
        if parts.path.startswith("/ws/"):
            futures, stream = False, parts.path[len("/ws/") :]
        elif parts.path == "/public/stream":
            streams = parse_qs(parts.query).get("streams", [""])[0].split("/")
            if len(streams) != 1:
                return None
            futures, stream = True, streams[0]
        else:
            return None
        name, _, kind = stream.partition("@")
        if not kind.startswith("depth") or not kind[5:].split("@")[0].isdigit():
            return None
        if name != name.lower():  # Binance stream names are lower case
            return None
        return futures, name.upper(), int(kind[5:].split("@")[0])

    def _message(self, futures: bool, symbol: str, depth: int, seq: int) -> str:
        with self._lock:
            bid, ask = self.books[symbol]
        tick = Decimal("0.01")
        n = min(depth, self.levels)
        bids = [[format(bid - i * tick, "f"), "2.5"] for i in range(n)]
        asks = [[format(ask + i * tick, "f"), "2.5"] for i in range(n)]
        if not futures:
            return json.dumps({"lastUpdateId": seq, "bids": bids, "asks": asks})
        now = int(time.time() * 1000)
        data = {
            "e": "depthUpdate",
            "E": now,
            "T": now,
            "s": symbol,
            "U": seq,
            "u": seq,
            "pu": seq - 1,
            "b": bids,
            "a": asks,
        }
        return json.dumps({"stream": f"{symbol.lower()}@depth{depth}", "data": data})

    async def _handler(self, conn: ServerConnection) -> None:
        path = conn.request.path if conn.request is not None else ""
        route = self._route(path)
        if route is None or route[1] not in self.books:
            await conn.close(1008, f"no such stream {path}")
            return
        self.paths.append(path)
        self._open.add(conn)
        futures, symbol, depth = route
        seq = 1
        closed = asyncio.ensure_future(conn.wait_closed())
        try:
            while not closed.done():
                if self._sending.is_set():
                    await conn.send(self._message(futures, symbol, depth, seq))
                    self.sent += 1
                    seq += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(closed), self.interval_s)
        except Exception:  # the client went away or the connection was aborted
            pass
        finally:
            self._open.discard(conn)
            closed.cancel()
