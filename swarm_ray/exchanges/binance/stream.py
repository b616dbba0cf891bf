"""The book over python-binance's websocket socket manager, on a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from binance.async_client import AsyncClient
from binance.ws.streams import BinanceSocketManager

from swarm_ray.core.clock import Clock
from swarm_ray.core.domain import BookLevel
from swarm_ray.exchanges.binance.parsing import _levels

log = logging.getLogger(__name__)

_SOCKET_POLL_S = 0.2


class _BookStream(threading.Thread):
    """Partial-depth stream on python-binance's socket manager, in its own event loop."""

    def __init__(self, futures: bool, ws_root: str, symbol: str, clock: Clock) -> None:
        super().__init__(name=f"binance-book-{symbol}", daemon=True)
        self._futures, self._root, self.symbol, self._clock = futures, ws_root, symbol, clock
        self._lock = threading.Lock()
        self._latest: tuple[int, tuple[BookLevel, ...], tuple[BookLevel, ...]] | None = None
        self._running = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.messages = 0

    def latest(self) -> tuple[int, tuple[BookLevel, ...], tuple[BookLevel, ...]] | None:
        with self._lock:
            return self._latest

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            with self._lock:  # stop() may have come first; it must see the task or prevent it
                if not self._running:
                    return
                self._loop, self._task = loop, loop.create_task(self._listen())
            loop.run_until_complete(self._task)
        except (asyncio.CancelledError, Exception) as exc:  # the stream is an optimisation
            if self._running:
                log.warning("book stream %s stopped: %s", self.symbol, type(exc).__name__)
        finally:
            loop.close()

    async def _listen(self) -> None:
        client = AsyncClient(loop=asyncio.get_running_loop())  # public streams need no keys
        try:
            bsm = BinanceSocketManager(client)
            bsm.STREAM_URL = self._root
            bsm.FSTREAM_URL = self._root
            if self._futures:
                socket = bsm.futures_depth_socket(self.symbol, depth="5")
            else:
                socket = bsm.depth_socket(self.symbol, depth=BinanceSocketManager.WEBSOCKET_DEPTH_5)
            # the library's read loop notices a shutdown only between receives, which wait up to
            # TIMEOUT (10 s) on a quiet stream; poll more often so that stop() is prompt
            socket.TIMEOUT = _SOCKET_POLL_S
            async with socket as s:
                while self._running:
                    self._on_message(await s.recv())
        finally:
            await client.close_connection()

    def _on_message(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        data = msg.get("data", msg)
        if data.get("e") == "error":
            with self._lock:
                self._latest = None
            return
        bids, asks = data.get("bids", data.get("b")), data.get("asks", data.get("a"))
        if not bids or not asks:
            return
        with self._lock:
            if not self._running:
                return
            self._latest = (self._clock.now_ns(), _levels(bids, 20), _levels(asks, 20))
            self.messages += 1

    def stop(self) -> None:
        with self._lock:
            self._running = False
            self._latest = None
            loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                # the library's read loop is a task of its own, and may be sleeping between
                # reconnect attempts: cancel it along with ours
                loop.call_soon_threadsafe(_cancel_all_tasks, loop)
        self.join(timeout=3)
        if self.is_alive():
            log.warning("book stream %s did not stop within 3 s", self.symbol)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()
