"""The paper account's money: balances, futures positions and margin, fees, and what orders hold
and fills do to them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from swarm_ray.core.accounting import CostBasis
from swarm_ray.core.domain import OrderIntent, Side
from swarm_ray.core.instruments import Balance, Position, SymbolRules
from swarm_ray.exchanges.binance import constants as C
from swarm_ray.exchanges.errors import DefiniteReject
from swarm_ray.exchanges.paper.store import _Order

__all__ = ["PaperAccount"]

_BPS = Decimal("0.0001")
_ZERO = Decimal(0)
_FLAT = CostBasis()


class PaperAccount:
    """Balances, positions and margin of one paper account.

    spot: each asset's balance is (free, locked); an open order locks what it may spend (a buy
    its notional plus the larger fee, a sell its base quantity) and a fill moves base against
    quote, the fee paid in the quote. futures: the quote asset's balance is the wallet; each
    symbol has a signed position at average cost (``core.accounting.CostBasis``); positions and
    open orders hold initial margin, notional / leverage (only what increases the position needs
    margin); a fill adds its realised PnL less the fee to the wallet.

    Fees are maker or taker bps of the notional, in the quote asset. What changed is tracked, for
    persistence (``changes``).
    """

    def __init__(
        self,
        rules: Mapping[str, SymbolRules],
        futures: bool,
        maker_fee_bps: Decimal,
        taker_fee_bps: Decimal,
        leverage: int,
    ) -> None:
        self.rules = rules
        self.futures = futures
        self.maker_rate = maker_fee_bps * _BPS
        self.taker_rate = taker_fee_bps * _BPS
        # spot buys lock the fee too
        self._reserve_rate = 1 + max(self.maker_rate, self.taker_rate, _ZERO)
        self._leverage = Decimal(leverage)
        self._bal: dict[str, list[Decimal]] = {}  # asset -> [free, locked]; futures: [wallet, 0]
        self._pos: dict[str, CostBasis] = {}  # futures: symbol -> position
        self._order_margin: dict[str, Decimal] = {}  # futures: asset -> margin of open orders
        self._pos_margin: dict[str, Decimal] = {}  # futures: symbol -> margin of the position
        self._pos_margin_total: dict[str, Decimal] = {}  # futures: asset -> sum of the above
        self._dirty_assets: set[str] = set()
        self._dirty_pos: set[str] = set()

    # ------------------------------------------------------------ state

    def deposit(self, asset: str, amount: Decimal) -> None:
        """Start ``asset`` at ``amount`` free."""
        self._bal[asset] = [Decimal(amount), _ZERO]
        self._dirty_assets.add(asset)

    def restore(
        self,
        balances: Iterable[tuple[str, Decimal, Decimal]],
        positions: Iterable[tuple[str, Decimal, Decimal | None]],
        open_orders: Iterable[_Order],
    ) -> None:
        """Resume from stored balances and positions; open orders hold their margin again
        (spot funds they locked are in the stored balances already)."""
        if self.futures:
            for o in open_orders:
                self._add_margin(o.reserve_asset, o.reserve)
        for asset, free, locked in balances:
            self._bal[asset] = [free, locked]
        for symbol, qty, entry in positions:
            self._pos[symbol] = CostBasis(qty, entry)
            self._set_pos_margin(symbol)

    def changes(
        self,
    ) -> tuple[list[tuple[str, Decimal, Decimal]], list[tuple[str, Decimal, Decimal | None]]]:
        """(asset, free, locked) and (symbol, quantity, entry) of what changed since
        ``forget_changes``."""
        bal, pos = self._bal, self._pos
        balances = [(a, bal[a][0], bal[a][1]) for a in self._dirty_assets]
        positions = [(s, pos[s].quantity, pos[s].entry_price) for s in self._dirty_pos]
        return balances, positions

    def forget_changes(self) -> None:
        """The changes are stored (or need not be)."""
        self._dirty_assets.clear()
        self._dirty_pos.clear()

    @property
    def changed(self) -> bool:
        return bool(self._dirty_assets or self._dirty_pos)

    # ------------------------------------------------------------ margin

    def _add_margin(self, asset: str, amount: Decimal) -> None:
        self._order_margin[asset] = self._order_margin.get(asset, _ZERO) + amount

    def _set_pos_margin(self, symbol: str) -> None:
        basis = self._pos[symbol]
        q, entry = basis.quantity, basis.entry_price
        margin = abs(q) * entry / self._leverage if entry is not None else _ZERO
        asset = self.rules[symbol].quote_asset
        total = self._pos_margin_total.get(asset, _ZERO)
        self._pos_margin_total[asset] = total + margin - self._pos_margin.get(symbol, _ZERO)
        self._pos_margin[symbol] = margin

    def available(self, asset: str) -> Decimal:
        """futures: wallet less the margin of positions and open orders (unrealised PnL is not
        counted: the check is deliberately simple)."""
        wallet = self._bal.get(asset, [_ZERO, _ZERO])[0]
        pos = self._pos_margin_total.get(asset, _ZERO)
        return wallet - pos - self._order_margin.get(asset, _ZERO)

    # ------------------------------------------------------------ orders

    def required(self, intent: OrderIntent, ref_price: Decimal) -> tuple[Decimal, str]:
        """What the order must hold (spot funds, futures margin) and in which asset, priced at
        ``ref_price``; ``DefiniteReject`` naming the shortfall when the account lacks it."""
        rules = self.rules[intent.symbol]
        qty, buy = intent.quantity, intent.side is Side.BUY
        if self.futures:
            asset = rules.quote_asset
            q = self._pos.get(intent.symbol, _FLAT).quantity
            signed = qty if buy else -qty
            increase = max(_ZERO, abs(q + signed) - abs(q))  # reducing needs no margin
            need = increase * ref_price / self._leverage
            avail = self.available(asset)
            if need > avail:
                raise DefiniteReject(
                    f"Margin is insufficient: {intent.client_order_id} needs {need} {asset} "
                    f"initial margin, {avail} available",
                    code=C.CODE_MARGIN_INSUFFICIENT,
                )
            return need, asset
        if buy:
            asset, need = rules.quote_asset, qty * ref_price * self._reserve_rate
        else:
            asset, need = rules.base_asset, qty
        bal = self._bal.setdefault(asset, [_ZERO, _ZERO])
        if bal[0] < need:
            raise DefiniteReject(
                f"Account has insufficient balance for requested action: "
                f"{intent.client_order_id} needs {need} {asset}, {bal[0]} free",
                code=C.CODE_NEW_ORDER_REJECTED,
            )
        return need, asset

    def hold(self, o: _Order) -> None:
        """Hold what a new resting order reserved (``o.reserve`` of ``o.reserve_asset``)."""
        if self.futures:
            self._add_margin(o.reserve_asset, o.reserve)
        else:
            bal = self._bal[o.reserve_asset]
            bal[0] -= o.reserve
            bal[1] += o.reserve
            self._dirty_assets.add(o.reserve_asset)

    def release(self, o: _Order, amount: Decimal) -> None:
        """Give back ``amount`` of what ``o`` holds."""
        o.reserve -= amount
        if self.futures:
            self._add_margin(o.reserve_asset, -amount)
        else:
            bal = self._bal[o.reserve_asset]
            bal[0] += amount
            bal[1] -= amount
            self._dirty_assets.add(o.reserve_asset)

    def settle(self, o: _Order, price: Decimal, qty: Decimal, maker: bool) -> Decimal:
        """Book a fill of ``qty`` of ``o`` at ``price`` (before ``o.filled`` counts it): release
        what it held for that part, move balances or the position, charge the fee. Returns
        the fee (quote asset)."""
        rules = self.rules[o.symbol]
        base, quote = rules.base_asset, rules.quote_asset
        notional = price * qty
        fee = notional * (self.maker_rate if maker else self.taker_rate)
        buy = o.side is Side.BUY
        if o.reserve_asset:
            if o.filled + qty >= o.qty:
                release = o.reserve
            elif self.futures:
                release = o.reserve * qty / (o.qty - o.filled)
            else:
                release = qty * o.price * self._reserve_rate if buy else qty
            self.release(o, release)
        bal = self._bal
        if self.futures:
            wallet = bal.setdefault(quote, [_ZERO, _ZERO])
            signed = qty if buy else -qty
            self._pos[o.symbol], realised = self._pos.get(o.symbol, _FLAT).trade(signed, price)
            self._set_pos_margin(o.symbol)
            self._dirty_pos.add(o.symbol)
            wallet[0] += realised - fee
            self._dirty_assets.add(quote)
        else:
            b, q = bal.setdefault(base, [_ZERO, _ZERO]), bal.setdefault(quote, [_ZERO, _ZERO])
            if buy:
                q[0] -= notional + fee
                b[0] += qty
            else:
                b[0] -= qty
                q[0] += notional - fee
            self._dirty_assets.update((base, quote))
        return fee

    # ------------------------------------------------------------ reports

    def balances(self) -> dict[str, Balance]:
        """spot: free and locked per asset. futures: the quote wallet as Binance reports it
        (total = wallet balance, free = available: wallet less position and order margin)."""
        out = {}
        quotes = {r.quote_asset for r in self.rules.values()} if self.futures else set()
        for asset, (free, locked) in self._bal.items():
            if asset in quotes:
                avail = self.available(asset)
                out[asset] = Balance(asset, avail, max(_ZERO, free - avail))
            else:
                out[asset] = Balance(asset, free, locked)
        return out

    def position(self, symbol: str, mark: Decimal | None) -> Position:
        """spot: the base asset's balance. futures: signed quantity, entry price, and the
        unrealised PnL at ``mark`` (0 without one)."""
        if not self.futures:
            bal = self._bal.get(self.rules[symbol].base_asset, [_ZERO, _ZERO])
            return Position(symbol, bal[0] + bal[1])
        basis = self._pos.get(symbol, _FLAT)
        upnl = basis.unrealized(mark) if mark is not None else _ZERO
        return Position(symbol, basis.quantity, basis.entry_price, upnl)
