"""The panel's web application (FastAPI): the page, its static files and its JSON API.

``create_app(settings, live)`` builds it. On a cluster it is the ingress of a Ray Serve
deployment (:mod:`.deploy`); ``swarm-ray panel`` serves the same app for a finished run's
journals. Every URL is relative to where the panel is mounted (``/panel/`` on Serve).

Reads (``GET /api/...``) need the operator token unless ``public_read`` is set; controls
(``POST /api/controls/...``: ``stop``, ``kill-switch``, ``emergency-stop``, ``clear``) always
need it, a JSON body with the operator's name and reason, and are recorded in the journal.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from swarm_ray.panel.auth import check_bearer
from swarm_ray.panel.data import JournalFolder, UnknownSymbol

__all__ = ["Live", "PanelSettings", "create_app"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SYMBOL = r"^[A-Z0-9]{2,30}$"


@dataclass(frozen=True)
class PanelSettings:
    journal_dir: str
    token_digest: str
    public_read: bool = False
    threshold: float | None = None
    refresh_s: float = 2.0
    title: str = "swarm-ray"


class Live(Protocol):
    """A running swarm, when there is one: its coordinators' status and stop."""

    def status(self) -> dict[str, dict[str, Any]]:
        """symbol -> the coordinator's live view of it (``running``, ``cycle``, ``position``,
        ``pnl``, ``fills``, ``coordinator``, ``last``)."""
        ...

    def stop(self, symbol: str | None, emergency: bool, reason: str, operator: str) -> list[str]:
        """Stop the coordinators trading ``symbol`` (``None``: all); the symbols stopped."""
        ...


class Control(BaseModel):
    symbol: str | None = Field(None, pattern=SYMBOL, description="None: every symbol")
    operator: str = Field(min_length=1, max_length=64, pattern=r"^[\w .@-]+$")
    reason: str = Field(min_length=1, max_length=300)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def create_app(settings: PanelSettings, live: Live | None = None) -> FastAPI:
    folder = JournalFolder(settings.journal_dir)
    app = FastAPI(title=f"{settings.title} panel", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def operator_auth(request: Request) -> None:
        if not check_bearer(request.headers.get("authorization"), settings.token_digest):
            if request.method == "POST":
                who = request.client.host if request.client else "unknown"
                log.warning("panel: refused %s from %s: no valid operator token",
                            request.url.path, who)  # fmt: skip
            raise HTTPException(
                401,
                "the operator token is missing or wrong (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def read_auth(request: Request) -> None:
        if not settings.public_read:
            operator_auth(request)

    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null":
            host = request.headers.get("host", "")
            if urlsplit(origin).netloc != host:
                log.warning("panel: refused a control from origin %s (host %s)", origin, host)
                raise HTTPException(403, f"cross-origin request from {origin} refused")

    def safe_json(data: Any) -> JSONResponse:
        return JSONResponse(_clean(data), headers={"Cache-Control": "no-store"})

    def unknown(exc: UnknownSymbol) -> HTTPException:
        return HTTPException(404, str(exc))

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> Any:
        # relative URLs in the page need the trailing slash (``/panel`` -> ``/panel/``)
        path = request.scope.get("root_path", "") + request.url.path
        if not path.endswith("/"):
            return RedirectResponse(path + "/")
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/info")
    def info() -> Any:
        """What the page needs before it asks for data (never needs the token)."""
        return safe_json(
            {
                "title": settings.title,
                "mode": "live" if live is not None else "journal",
                "journal_dir": Path(settings.journal_dir).name,
                "public_read": settings.public_read,
                "threshold": settings.threshold,
                "refresh_s": settings.refresh_s,
            }
        )

    @app.get("/api/auth", dependencies=[Depends(operator_auth)])
    def auth_check() -> Any:
        return {"ok": True}

    @app.get("/api/overview", dependencies=[Depends(read_auth)])
    def overview() -> Any:
        rows = folder.overview()
        status = _live_status(live)
        by_symbol = {r["symbol"]: r for r in rows}
        for symbol, st in status.items():
            row = by_symbol.setdefault(symbol, {"symbol": symbol, "agents": [], "fills": 0})
            row["live"] = st
            for key in ("cycle", "position", "pnl", "fills"):
                if st.get(key) is not None:
                    row[key] = st[key]
        for row in by_symbol.values():
            row.setdefault("live", None)
        return safe_json(
            {
                "time": time.time(),
                "mode": "live" if live is not None else "journal",
                "threshold": settings.threshold,
                "symbols": sorted(by_symbol.values(), key=lambda r: r["symbol"]),
            }
        )

    @app.get("/api/symbols/{symbol}/series", dependencies=[Depends(read_auth)])
    def series(
        symbol: str = PathParam(..., pattern=SYMBOL), limit: int = Query(1500, ge=1, le=20000)
    ) -> Any:
        try:
            return safe_json({**folder.series(symbol, limit), "threshold": settings.threshold})
        except UnknownSymbol as exc:
            raise unknown(exc) from None

    @app.get("/api/symbols/{symbol}/agents", dependencies=[Depends(read_auth)])
    def agents(symbol: str = PathParam(..., pattern=SYMBOL)) -> Any:
        try:
            return safe_json({"symbol": symbol, "agents": folder.agent_records(symbol)})
        except UnknownSymbol as exc:
            raise unknown(exc) from None

    @app.get("/api/orders", dependencies=[Depends(read_auth)])
    def orders(
        q: str = Query("", max_length=64),
        symbol: str | None = Query(None, pattern=SYMBOL),
        status: str | None = Query(None, pattern=r"^[A-Z_]{2,20}$"),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=1_000_000),
    ) -> Any:
        return safe_json(folder.orders(q, symbol, status, limit, offset))

    @app.get("/api/orders/{order_id}/explain", dependencies=[Depends(read_auth)])
    def explain(order_id: str = PathParam(..., min_length=1, max_length=64)) -> Any:
        why = folder.explain(order_id)
        if why is None:
            raise HTTPException(404, f"order {order_id!r} is in no journal of this run")
        return safe_json({**why, "threshold": settings.threshold})

    @app.get("/api/audit", dependencies=[Depends(read_auth)])
    def audit(limit: int = Query(200, ge=1, le=5000)) -> Any:
        return safe_json({"events": folder.audit(limit)})

    controls = [Depends(operator_auth), Depends(same_origin)]

    @app.post("/api/controls/stop", dependencies=controls)
    def stop(body: Control) -> Any:
        """Stop the coordinators of ``symbol`` (all: ``null``) after their current cycle."""
        if live is None:
            raise HTTPException(409, "no swarm is running: this panel reads a finished run")
        stopped = live.stop(body.symbol, False, f"{body.reason} (panel)", body.operator)
        if not stopped:
            raise HTTPException(409, f"no running coordinator trades {body.symbol or 'anything'}")
        log.info("panel: %s stopped %s: %s", body.operator, stopped, body.reason)
        return {"stopped": stopped}

    @app.post("/api/controls/emergency-stop", dependencies=controls)
    def emergency(body: Control) -> Any:
        """Trip the kill switch (kept in the journal) and, for a running swarm, cancel every
        open order and stop; quoting resumes only after an operator clears it."""
        reason = f"{body.reason} (panel)"
        stopped = [] if live is None else live.stop(body.symbol, True, reason, body.operator)
        try:
            tripped = folder.trip(body.symbol, body.operator, reason)
        except UnknownSymbol as exc:
            if not stopped:
                raise unknown(exc) from None
            tripped = []
        log.warning("panel: %s tripped the kill switch of %s: %s", body.operator,
                    body.symbol or "every symbol", body.reason)  # fmt: skip
        return {"stopped": stopped, "tripped": tripped}

    @app.post("/api/controls/kill-switch", dependencies=controls)
    def kill_switch(body: Control) -> Any:
        """Trip the kill switch only: a running swarm keeps voting but pulls its quotes at its
        next cycle and places nothing until an operator clears it."""
        try:
            tripped = folder.trip(body.symbol, body.operator, f"{body.reason} (panel)")
        except UnknownSymbol as exc:
            raise unknown(exc) from None
        log.warning("panel: %s tripped the kill switch of %s: %s", body.operator,
                    body.symbol or "every symbol", body.reason)  # fmt: skip
        return {"tripped": tripped}

    @app.post("/api/controls/clear", dependencies=controls)
    def clear(body: Control) -> Any:
        """Clear the kill switch of ``symbol`` (``null``: every switch); quoting resumes."""
        try:
            out = folder.clear(body.symbol, body.operator, body.reason)
        except UnknownSymbol as exc:
            raise unknown(exc) from None
        log.warning("panel: %s cleared the kill switch of %s: %s", body.operator,
                    body.symbol or "every symbol", body.reason)  # fmt: skip
        return out

    return app


def _live_status(live: Live | None) -> dict[str, dict[str, Any]]:
    if live is None:
        return {}
    try:
        return live.status()
    except Exception as exc:  # the journal view still works
        log.warning("panel: live status unavailable: %s", exc)
        return {}
