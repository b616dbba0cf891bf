"""Exchange configuration (YAML) and credentials (environment only)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator

from envs.queue import QueueModelName
from swarm_ray.core.config import ConfigError, StrictModel, resolve_path, secret_from_env
from swarm_ray.exchanges.binance import constants as C

__all__ = [
    "BinanceCredentials",
    "ExchangeConfig",
    "ExchangeKind",
    "PaperConfig",
    "PaperSymbolConfig",
]

ExchangeKind = Literal["paper", "binance-spot", "binance-futures"]

ENV_API_KEY = "BINANCE_API_KEY"
ENV_API_SECRET = "BINANCE_API_SECRET"


DEFAULT_PAPER_DAY = "data/binance-spot-1m/BTCUSDT-1m-2024-08-20.csv"

# Hosts of Binance's test networks (spot testnet, USD-M and COIN-M futures testnet): the
# only remote endpoints that do not trade real money.
TESTNET_HOSTS = frozenset(
    {
        "testnet.binance.vision",
        "stream.testnet.binance.vision",
        "ws-api.testnet.binance.vision",
        "testnet.binancefuture.com",
        "fstream.binancefuture.com",
        "dstream.binancefuture.com",
    }
)
# an endpoint root: scheme://host[:port][/path], nothing that could hide the real host
_ROOT_URL = re.compile(r"^(https?|wss?)://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/\-]*)?$")


def endpoint_host(url: str) -> str:
    """The host a URL connects to, lower case, without a trailing dot."""
    return (urlparse(url).hostname or "").rstrip(".").lower()


def is_test_endpoint(url: str) -> bool:
    """A known Binance testnet host or a loopback address (127.0.0.0/8, ::1, localhost):
    the endpoints that cannot trade real money. Anything else may (a proxy forwards to an
    unknown venue), so it counts as mainnet."""
    host = endpoint_host(url)
    if host in TESTNET_HOSTS or host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback on any Python
    return (mapped or ip).is_loopback


_QUOTE_SUFFIXES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH")


class PaperSymbolConfig(StrictModel):
    """One symbol of the paper exchange: what it replays and its trading filters.

    Exactly one source is given: ``klines`` (1-minute kline CSVs), ``l2`` (L2 depth+trade
    files, in order), ``trades`` with ``book_ticker`` (Binance aggTrades and bookTicker CSVs:
    trades and the touch) or ``source_symbol`` (replay another configured symbol's data;
    loaded once). Filters
    default to Binance spot BTCUSDT's.
    """

    klines: tuple[str, ...] = ()
    """Binance 1m kline CSVs, in time order (relative paths resolve from the project root)."""
    l2: tuple[str, ...] = ()
    """Binance L2 stream files (``envs.data.l2`` format), in time order."""
    trades: tuple[str, ...] = ()
    """Binance aggTrades CSVs (``swarm-ray data download --kind aggTrades``), in time order;
    with ``book_ticker``."""
    book_ticker: tuple[str, ...] = ()
    """Binance bookTicker CSVs (USD-M), in time order: the best bid and ask over time; with
    ``trades``."""
    history_klines: tuple[str, ...] = ()
    """With ``l2`` or ``trades``: 1-minute kline CSVs of the time before the tick data. Their
    bars that closed before its first trade come first in ``recent_klines`` (1m and longer),
    so that features have their history from the first cycle of a short tick replay."""
    source_symbol: str | None = None
    """Replay the data of this other configured symbol (e.g. SYM001..SYM100 on BTCUSDT)."""
    time_offset_ms: int = 0
    """Shift every replayed timestamp by this much (e.g. stagger symbols sharing one day)."""
    base_asset: str | None = None
    """Default: the symbol without its quote-asset suffix (BTCUSDT -> BTC), else the symbol."""
    quote_asset: str | None = None
    """Default: the symbol's suffix if it is a known quote asset, else USDT."""
    tick_size: Decimal = Field(Decimal("0.01"), gt=0)
    step_size: Decimal = Field(Decimal("0.00001"), gt=0)
    min_qty: Decimal = Field(Decimal("0.00001"), gt=0)
    max_qty: Decimal = Field(Decimal("9000"), gt=0)
    min_notional: Decimal = Field(Decimal("5"), ge=0)
    half_spread: Decimal | None = Field(None, gt=0)
    """Kline replay: the synthetic book's best bid/ask sit this far from the bar close (rounded
    outward to ticks); default one tick."""
    book_levels: int = Field(5, ge=1, le=20)
    """Kline replay: levels per side of the synthetic book, one tick apart."""
    level_qty: float = Field(1.0, gt=0)
    """Kline replay: quantity shown at each synthetic level."""

    @field_validator("klines", "l2", "trades", "book_ticker", "history_klines")
    @classmethod
    def _files_exist(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        missing = [f for f in v if not resolve_path(f).is_file()]
        if missing:
            raise ValueError(f"file(s) not found: {missing}")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> PaperSymbolConfig:
        if bool(self.trades) != bool(self.book_ticker):
            raise ValueError("trades and book_ticker go together (trades and the touch)")
        given = [n for n in ("klines", "l2", "trades", "source_symbol") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of klines, l2, trades + book_ticker, source_symbol "
                f"(got {given or 'none'})"
            )
        if self.history_klines and not (self.l2 or self.trades):
            raise ValueError("history_klines: only with l2 or trades (klines are their own)")
        if self.min_qty > self.max_qty:
            raise ValueError(f"min_qty {self.min_qty} above max_qty {self.max_qty}")
        return self

    @property
    def replays_ticks(self) -> bool:
        """Tick data (L2, or trades + bookTicker) rather than 1-minute klines."""
        return bool(self.l2 or self.trades)

    def assets(self, symbol: str) -> tuple[str, str]:
        """(base, quote) of ``symbol``, from the config or from its name."""
        quote = self.quote_asset or next(
            (q for q in _QUOTE_SUFFIXES if symbol.endswith(q) and len(symbol) > len(q)), "USDT"
        )
        base = self.base_asset or (symbol[: -len(quote)] if symbol.endswith(quote) else symbol)
        return base or symbol, quote


def _default_paper_symbols() -> dict[str, PaperSymbolConfig]:
    return {"BTCUSDT": PaperSymbolConfig(klines=(DEFAULT_PAPER_DAY,))}


class PaperConfig(StrictModel):
    """The embedded paper exchange: a replay of real data with the environment's fill model."""

    symbols: dict[str, PaperSymbolConfig] = Field(default_factory=_default_paper_symbols)
    """Symbol -> what it replays. Default: BTCUSDT on the bundled 2024-08-20 klines."""
    market: Literal["spot", "futures"] = "futures"
    """spot: the base balance is the position, orders lock funds. futures (default, like the
    environment: start flat, go short): signed position, entry price, realised PnL in the quote
    asset, a simple initial-margin check."""
    maker_fee_bps: Decimal = Field(Decimal("2.0"), ge=-10, le=100)
    """Fee on fills of resting orders, bps of notional (negative: rebate). Paid in the quote."""
    taker_fee_bps: Decimal = Field(Decimal("5.0"), ge=0, le=100)
    """Fee on market orders and on limit orders that cross on arrival."""
    latency_ms: float = Field(20.0, ge=0, le=60_000)
    """A request reaches the venue this long after it is sent: an order can fill, a cancel takes
    effect, only on market data after that."""
    initial_balances: dict[str, Decimal] = Field(default_factory=lambda: {"USDT": Decimal(10000)})
    """Account at the start (restored from ``state_path`` instead when it exists)."""
    leverage: int = Field(5, ge=1, le=125)
    """futures: initial margin is notional / leverage."""
    fill_model: Literal["trade_through", "queue"] = "trade_through"
    """How resting orders fill. ``trade_through`` (klines or L2): when a later bar or trade
    goes strictly through the price, in full. ``queue`` (L2 only, the tick replay): the order
    joins behind the size shown at its price; trades at its price use up the queue ahead and
    then fill it, partly if they are smaller; a trade through its price or the opposite touch
    reaching it fills the rest."""
    queue_model: QueueModelName = "risk_averse"
    """``fill_model: queue``: how cancels by others move the order up the queue:
    ``risk_averse`` (never), ``power_prob`` or ``log_prob`` (with the chance that a cancel came
    from ahead, as hftbacktest's models of the same names)."""
    queue_power: float = Field(2.0, gt=0, le=100)
    """The exponent of ``queue_model: power_prob``."""
    feed_latency_ms: float = Field(0.0, ge=0, le=60_000)
    """Market data reaches the trader this long after the venue stamped it: snapshots and
    klines show the market as of the clock less this."""
    touch_fill_prob: float = Field(1.0, ge=0, le=1)
    """``fill_model: trade_through``: a traded-through order fills with this chance (the
    environment's queue stand-in)."""
    seed: int = Field(0, ge=0)
    """Seeds the touch_fill_prob draws (each draw depends only on seed, event and order)."""
    align_to_clock: bool = False
    """Shift the replay so that it starts at the clock's time when first built (a LiveClock
    trades the bundled day in real time); the shift is kept in the state file."""
    state_path: str | None = None
    """SQLite file holding the account (orders, fills, balances, positions): written before a
    call returns, restored by a new exchange with the same config. None: in memory only."""

    @field_validator("initial_balances")
    @classmethod
    def _non_negative(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        bad = {a: b for a, b in v.items() if b < 0}
        if bad:
            raise ValueError(f"balances must not be negative: {bad}")
        return v

    @model_validator(mode="after")
    def _sources_exist(self) -> PaperConfig:
        if not self.symbols:
            raise ValueError("symbols: configure at least one symbol")
        for name, sym in self.symbols.items():
            src = sym.source_symbol
            if src is None:
                continue
            if src not in self.symbols:
                raise ValueError(f"symbols.{name}.source_symbol: {src!r} is not configured")
            if self.symbols[src].source_symbol is not None:
                raise ValueError(
                    f"symbols.{name}.source_symbol: {src!r} itself replays another symbol"
                )
        if self.fill_model == "queue":
            for name in self.symbols:
                if not self.data_spec(name).replays_ticks:
                    raise ValueError(
                        f"symbols.{name}: fill_model 'queue' needs tick data (l2, or trades + "
                        "book_ticker); 1-minute klines show no queue: use fill_model "
                        "'trade_through' for them"
                    )
        return self

    def data_spec(self, symbol: str) -> PaperSymbolConfig:
        """The configuration of the data ``symbol`` replays: its own, or its
        ``source_symbol``'s."""
        spec = self.symbols[symbol]
        return spec if spec.source_symbol is None else self.symbols[spec.source_symbol]


class ExchangeConfig(StrictModel):
    """Which venue and how to talk to it. Safe by default: paper, and testnet for Binance."""

    kind: ExchangeKind = "paper"
    testnet: bool = True
    """Default endpoints: Binance's testnet (``true``) or mainnet (``false``). Whether a config
    trades real money is decided by the endpoints it resolves to, overrides included, not by
    this flag: see ``allow_mainnet``."""
    allow_mainnet: bool = False
    """Needed when any endpoint (REST or websocket) is not a Binance testnet host or a
    loopback address: such an endpoint is treated as mainnet, real money. The CLI asks for a
    confirmation on top."""
    base_url: str | None = None
    """REST root override (fakes, proxies, regional endpoints), e.g. http://127.0.0.1:8080.
    Anything but a testnet host or loopback counts as mainnet."""
    ws_url: str | None = None
    """Websocket market-data root override; market data falls back to REST without it.
    Anything but a testnet host or loopback counts as mainnet."""
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
    paper: PaperConfig | None = None
    """``kind: paper``: what the paper exchange replays and its account (None: defaults)."""

    @field_validator("base_url", "ws_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parsed = urlparse(v)
        if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
            raise ValueError(f"not an absolute http(s)/ws(s) URL: {v!r}")
        # no user info, query, fragment or odd characters: the host must be the one connected to
        try:
            port_ok = parsed.port is None or 0 < parsed.port
        except ValueError:
            port_ok = False
        if not _ROOT_URL.match(v) or not parsed.hostname or not port_ok:
            raise ValueError(
                f"not a plain endpoint root scheme://host[:port][/path]: {v!r} "
                "(no user info, query or fragment)"
            )
        return v.rstrip("/")

    def endpoints(self) -> dict[str, str]:
        """The roots this config connects to, by the field that sets them."""
        return {"base_url": self.rest_root(), "ws_url": self.ws_root().rstrip("/")}

    def mainnet_endpoints(self) -> dict[str, str]:
        """The endpoints that may trade real money: not a Binance testnet host, not loopback."""
        if self.kind == "paper":
            return {}
        return {f: url for f, url in self.endpoints().items() if not is_test_endpoint(url)}

    @model_validator(mode="after")
    def _mainnet_needs_flag(self) -> ExchangeConfig:
        live = self.mainnet_endpoints()
        if live and not self.allow_mainnet:
            named = ", ".join(
                f"{f} {url}" + ("" if getattr(self, f) else " (the default of testnet: false)")
                for f, url in live.items()
            )
            raise ValueError(
                f"{named}: not a Binance testnet host or a loopback address, so it is mainnet "
                "and trades real money; set allow_mainnet: true as well to mean it"
            )
        return self

    @property
    def is_mainnet(self) -> bool:
        """Real money: some endpoint is neither a Binance testnet host nor loopback."""
        return bool(self.mainnet_endpoints())

    @property
    def network(self) -> Literal["paper", "testnet", "mainnet"]:
        """What reports and logs call the venue: decided by the endpoints, not the flag."""
        if self.kind == "paper":
            return "paper"
        return "mainnet" if self.is_mainnet else "testnet"

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
            raise ConfigError(
                f"Binance needs {ENV_API_KEY} and {ENV_API_SECRET} in the environment (never in "
                f"a config file); not set here: {', '.join(missing)}. Export both (on a cluster, "
                "in every Ray node's environment)"
            )
        return cls(key, secret)

    def __repr__(self) -> str:
        return "BinanceCredentials(api_key='**********', api_secret='**********')"

    __str__ = __repr__

    def __reduce__(self) -> object:
        # keys must not travel through pickles (Ray actor arguments, runtime_env)
        raise TypeError("BinanceCredentials cannot be pickled; read them from the env in place")
