"""Live features: the coordinator's rolling bar window turned into model inputs each cycle.

The vectors, built exactly as the models saw them in training:

- the 20 market-analysis features (``swarm_ray.features.analysis``) of the newest bar, from
  the same function that builds them for training, run over the window;
- the 15-column agent observation of the environment (``envs.features``): its market columns
  from ``market_features`` over the window, its agent columns (inventory, time left, unrealised
  PnL, drawdown, time since the last fill) scaled as the env scales them;
- for policies trained on observation layout v3, its 22 columns (``market_features_v3``): the
  same 15 scaled by the window's own trailing ``scale_window`` bars, plus 7 more. A window of
  256 bars holds the 240 of the default scale window.

Both use exponential averages seeded at the start of the window; with ``WINDOW`` bars the seed's
weight has decayed below 1e-7, so the values match the training features (tested).

The env's episodes are ``n_steps`` bars long and its ``time_left`` runs from 1 to 0 over each;
live trading has no episode, so the swarm runs on sessions of ``n_steps`` bars aligned to UTC
midnight, and resets the drawdown reference at each session start, as an episode would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.features import (
    DRAWDOWN,
    FILL_MEMORY_STEPS,
    INVENTORY,
    LAYOUTS,
    TIME_LEFT,
    TIME_SINCE_FILL,
    UNREALIZED_PNL,
    layout_bounds,
    market_features,
    market_features_v3,
    pnl_unit,
)
from swarm_ray.core.config import PROJECT_ROOT
from swarm_ray.core.instruments import Kline
from swarm_ray.features.analysis import analysis_feature_rows
from swarm_ray.features.outcomes import VoteFloor

__all__ = ["MIN_BARS", "WINDOW", "BarWindow", "ObservationSpec"]

WINDOW = 256
MIN_BARS = 61
"""Bars needed before features are defined (the longest look-back is 60 bars)."""


@dataclass(frozen=True, slots=True)
class ObservationSpec:
    """The scales of the policies' training env, needed to build their observation live."""

    ref_vol: float
    """Reference one-bar volatility of simple returns of the training data."""
    step_sigma: float
    """Typical one-bar price change of the training data (price units)."""
    mean_volume: float | None
    order_size: float
    max_inventory: float
    n_steps: int
    analysis_ref_vol: float = 1e-4
    """The market-analysis network's reference volatility (from its feature layout)."""
    layouts: tuple[tuple[str, str], ...] = field(default=())
    """(model name, observation layout) of every policy not on layout v2."""
    scale_window: int = 240
    """Layout v3: bars behind the rolling scale."""
    floors: tuple[VoteFloor, ...] = field(default=())
    """What each model version's votes must keep earning, from its card (``consensus.mute``)."""

    @property
    def pnl_unit(self) -> float:
        return 10.0 * self.order_size * self.step_sigma or 1.0

    def layout(self, model: str) -> str:
        """The observation layout ``model`` was trained on (v2 unless named)."""
        return dict(self.layouts).get(model, "v2")

    @property
    def needs_v3(self) -> bool:
        return any(layout == "v3" for _, layout in self.layouts)

    @classmethod
    def from_card(cls, card: dict[str, Any], analysis_ref_vol: float = 1e-4) -> ObservationSpec:
        """Scales from a policy's model card (its ``env_config``), reading its training days'
        klines from the project's ``data/`` when the recorded paths are elsewhere."""
        from envs.config import make_config
        from envs.data.klines import load_klines

        env_cfg = dict(card.get("env_config") or {"preset": "replay"})
        cfg = make_config(env_cfg)
        mp = cfg.midprice
        files = [
            f
            if Path(f).is_file()
            else str(PROJECT_ROOT / "data" / "binance-spot-1m" / Path(f).name)
            for f in mp.files
        ]
        if mp.ref_vol is not None and mp.step_sigma is not None:  # scale pinned at training
            ref_vol, step_sigma, mean_volume = mp.ref_vol, mp.step_sigma, mp.mean_volume
        elif mp.kind == "replay" and files and all(Path(f).is_file() for f in files):
            df = load_klines(files)
            close = df["close"].to_numpy(np.float64)
            r = np.diff(close) / close[:-1]
            ref_vol = float(np.std(r)) if len(r) > 1 and np.std(r) > 0 else 1e-4
            step_sigma = float(np.std(np.diff(close)))
            mean_volume = float(df["volume"].mean())
        else:
            ref_vol, step_sigma, mean_volume = 1e-4, 1.0, None
        return cls(
            ref_vol=ref_vol,
            step_sigma=step_sigma,
            mean_volume=mean_volume,
            order_size=cfg.actions.order_size,
            max_inventory=cfg.max_inventory,
            n_steps=cfg.n_steps,
            analysis_ref_vol=analysis_ref_vol,
            scale_window=cfg.observation.scale_window,
        )


class BarWindow:
    """The last ``WINDOW`` closed 1-minute bars of one symbol, and the features they give."""

    def __init__(self, spec: ObservationSpec, maxlen: int = WINDOW) -> None:
        self.spec = spec
        self._bars: deque[Kline] = deque(maxlen=maxlen)
        # each bar's numbers, kept beside it so a cycle builds its arrays without a Python loop
        self._rows: deque[tuple[float, ...]] = deque(maxlen=maxlen)

    def __len__(self) -> int:
        return len(self._bars)

    def bars(self) -> list[Kline]:
        """The bars held, oldest first."""
        return list(self._bars)

    @property
    def last_open_ms(self) -> int | None:
        return self._bars[-1].open_time_ms if self._bars else None

    @property
    def last(self) -> Kline | None:
        return self._bars[-1] if self._bars else None

    def extend(self, bars: Iterable[Kline]) -> int:
        """Append the bars newer than the newest held (older ones are ignored); returns how
        many were new."""
        added = 0
        for b in bars:
            last = self.last_open_ms
            if last is None or b.open_time_ms > last:
                self._bars.append(b)
                taker = b.taker_buy_volume if b.taker_buy_volume is not None else 0.5 * b.volume
                self._rows.append(
                    (b.open, b.high, b.low, b.close, b.volume, taker, float(b.trades),
                     float(b.open_time_ms))
                )  # fmt: skip
                added += 1
        return added

    def arrays(self) -> dict[str, np.ndarray]:
        cols = np.array(self._rows, dtype=np.float64).reshape(-1, 8).T
        keys = ("open", "high", "low", "close", "volume", "taker_buy", "trades", "open_time_ms")
        return dict(zip(keys, cols, strict=True))

    def volatility_bps(self, n: int = 20) -> float:
        """Standard deviation of the last ``n`` one-bar simple returns, in bps."""
        close = np.array([b.close for b in list(self._bars)[-(n + 1) :]], dtype=np.float64)
        if len(close) < 3:
            return 0.0
        return float(np.std(np.diff(close) / close[:-1]) * 1e4)

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """(analysis features (20,), market columns of the observation (15,), agent columns 0)."""
        if len(self._bars) < MIN_BARS:
            raise ValueError(f"warming up: {len(self._bars)} of {MIN_BARS} bars")
        a = self.arrays()
        analysis = analysis_feature_rows(
            a["open"],
            a["high"],
            a["low"],
            a["close"],
            a["volume"],
            a["taker_buy"],
            a["trades"],
            a["open_time_ms"],
            self.spec.analysis_ref_vol,
        )[-1]
        market = market_features(
            a["close"],
            self.spec.ref_vol,
            a["high"],
            a["low"],
            a["volume"],
            a["taker_buy"],
            self.spec.mean_volume,
        )[-1]
        return analysis, market.astype(np.float32)

    def market_v3(self) -> tuple[np.ndarray, float]:
        """Layout v3's market columns of the newest bar (22,) and the pnl unit of one order at
        its scale (ten one-bar standard deviations of the order's value)."""
        if len(self._bars) < MIN_BARS:
            raise ValueError(f"warming up: {len(self._bars)} of {MIN_BARS} bars")
        a = self.arrays()
        rows, scale = market_features_v3(
            a["close"],
            a["high"],
            a["low"],
            a["volume"],
            a["taker_buy"],
            a["open_time_ms"],
            self.spec.scale_window,
        )
        unit = float(pnl_unit(self.spec.order_size, a["close"][-1], scale[-1]))
        return rows[-1].astype(np.float32), unit


def agent_observation(
    market_row: np.ndarray,
    spec: ObservationSpec,
    *,
    inventory: float,
    unrealized_pnl: float,
    drawdown: float,
    bars_since_fill: float,
    bar_open_ms: int,
    pnl_unit: float | None = None,
) -> np.ndarray:
    """The observation of ``market_row``'s layout (15 columns: v2, 22: v3): its market columns
    plus the agent columns. ``pnl_unit``: v3's unit at the window's scale (else the spec's)."""
    obs = np.array(market_row, dtype=np.float32, copy=True)
    layout = next((k for k, cols in LAYOUTS.items() if obs.shape == (len(cols),)), None)
    if layout is None:
        raise ValueError(f"an observation row of {obs.shape} matches no layout")
    unit = pnl_unit or spec.pnl_unit
    obs[INVENTORY] = inventory / spec.max_inventory
    minute = bar_open_ms // 60_000
    obs[TIME_LEFT] = 1.0 - (minute % spec.n_steps) / spec.n_steps
    obs[UNREALIZED_PNL] = unrealized_pnl / unit
    obs[DRAWDOWN] = drawdown / unit
    obs[TIME_SINCE_FILL] = bars_since_fill / FILL_MEMORY_STEPS
    return np.clip(obs, *layout_bounds(layout))
