"""Shared plotting for the reports: PNG files through matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_lines", "plt", "save_figure"]


def save_figure(fig: Any, path: Path, dates: bool = False) -> None:
    """Write ``fig`` as a PNG and free it (``dates``: slant the time axis labels)."""
    if dates:
        fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_lines(
    series: Mapping[str, np.ndarray],
    title: str,
    ylabel: str,
    path: Path,
    x: np.ndarray | None = None,
    xlabel: str | None = None,
    figsize: tuple[float, float] = (10, 4),
    lw: float = 1.0,
) -> None:
    """One line per series around a zero line; with one series no legend, with a time axis
    (``x`` of datetimes) a grid and slanted labels."""
    fig, ax = plt.subplots(figsize=figsize)
    for name, y in series.items():
        if x is None:
            ax.plot(y, label=name, lw=lw)
        else:
            ax.plot(x, y, label=name, lw=lw)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(title=title, ylabel=ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    if len(series) > 1:
        ax.legend()
    dates = x is not None and np.issubdtype(np.asarray(x).dtype, np.datetime64)
    if dates:
        ax.grid(alpha=0.3)
    save_figure(fig, path, dates=dates)
