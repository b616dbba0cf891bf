"""Exchange configuration (YAML) and credentials (environment only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator

from swarm_ray.config import ConfigError, StrictModel, secret_from_env
from swarm_ray.exchanges import constants as C

__all__ = ["BinanceCredentials", "ExchangeConfig", "ExchangeKind"]

ExchangeKind = Literal["paper", "binance-spot", "binance-futures"]

ENV_API_KEY = "BINANCE_API_KEY"
ENV_API_SECRET = "BINANCE_API_SECRET"


class ExchangeConfig(StrictModel):
    """Which venue and how to talk to it. Safe by default: paper, and testnet for Binance."""

    kind: ExchangeKind = "paper"
    testnet: bool = True
    """Binance testnet endpoints. ``false`` means real money and also needs ``allow_mainnet``."""
    allow_mainnet: bool = False
    """Second, explicit switch for mainnet; the CLI asks for a confirmation on top."""
    base_url: str | None = None
    """REST root override (fakes, proxies, regional endpoints), e.g. http://127.0.0.1:8080."""
    ws_url: str | None = None
    """Websocket market-data root override; market data falls back to REST without it."""
    use_websocket: bool = True
    """Stream the book over python-binance's socket manager (REST when stale or down)."""
    recv_window_ms: int = Field(5000, ge=100, le=C.MAX_RECV_WINDOW_MS)
    """How long after its timestamp a signed request may still be executed."""
    request_timeout_s: float = Field(5.0, gt=0, le=30)
    """Per-request HTTP timeout; a timeout on an order is an unknown outcome."""
    time_sync_interval_s: float = Field(300.0, gt=0)
    """Resync the clock offset with the venue this often."""
    max_throttle_wait_s: float = Field(2.0, ge=0)
    """Wait at most this long for the local throttler before refusing a request."""
    unknown_resolve_margin_ms: int = Field(1000, ge=0, le=10_000)
    """Extra wait past timestamp + recvWindow before a lost order is declared never placed."""
    market_data_max_age_s: float = Field(2.0, gt=0)
    """A streamed book older than this is not used; REST is asked instead."""
    reference_price_max_age_s: float = Field(10.0, gt=0)
    """Orders are checked against the percent-price filters around the last known mid; an
    older mid is refreshed (one book request) before the order is checked."""

    @field_validator("base_url", "ws_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parsed = urlparse(v)
        if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
            raise ValueError(f"not an absolute http(s)/ws(s) URL: {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _mainnet_needs_flag(self) -> ExchangeConfig:
        if self.kind != "paper" and not self.testnet and not self.allow_mainnet:
            raise ValueError(
                "testnet: false trades real money; set allow_mainnet: true as well to mean it"
            )
        return self

    @property
    def is_mainnet(self) -> bool:
        return self.kind != "paper" and not self.testnet

    def rest_root(self) -> str:
        if self.base_url:
            return self.base_url
        if self.kind == "binance-futures":
            return C.FUTURES_TESTNET_ROOT if self.testnet else C.FUTURES_MAINNET_ROOT
        return C.SPOT_TESTNET_ROOT if self.testnet else C.SPOT_MAINNET_ROOT

    def ws_root(self) -> str:
        if self.ws_url:
            return self.ws_url + "/"
        if self.kind == "binance-futures":
            return C.FUTURES_TESTNET_WS if self.testnet else C.FUTURES_MAINNET_WS
        return C.SPOT_TESTNET_WS if self.testnet else C.SPOT_MAINNET_WS


@dataclass(frozen=True, slots=True)
class BinanceCredentials:
    """API key and secret, held as secret strings; ``repr`` and ``str`` show only a mask."""

    api_key: SecretStr
    api_secret: SecretStr

    @classmethod
    def from_env(cls) -> BinanceCredentials:
        key, secret = secret_from_env(ENV_API_KEY), secret_from_env(ENV_API_SECRET)
        if key is None or secret is None:
            missing = [n for n, v in ((ENV_API_KEY, key), (ENV_API_SECRET, secret)) if v is None]
            raise ConfigError(f"Binance keys come from the environment; not set: {missing}")
        return cls(key, secret)

    def __repr__(self) -> str:
        return "BinanceCredentials(api_key='**********', api_secret='**********')"

    __str__ = __repr__

    def __reduce__(self) -> object:
        # keys must not travel through pickles (Ray actor arguments, runtime_env)
        raise TypeError("BinanceCredentials cannot be pickled; read them from the env in place")
