"""The HMAC-SHA256 signing of python-binance and the fake's verifier, on Binance's doc vector."""

from __future__ import annotations

from decimal import Decimal

import pytest
from binance.client import Client
from pydantic import SecretStr

from swarm_ray.core.domain import OrderIntent, Side
from swarm_ray.exchanges.binance import BinanceExchange
from swarm_ray.exchanges.config import BinanceCredentials, ExchangeConfig
from swarm_ray.exchanges.errors import DefiniteReject
from tests.fakes.binance_server import (
    DOC_API_KEY,
    DOC_API_SECRET,
    DOC_PAYLOAD,
    DOC_SIGNATURE,
    FakeBinance,
    sign,
    verify_signature,
)


def test_fake_verifier_accepts_binance_documented_signature() -> None:
    assert sign(DOC_API_SECRET, DOC_PAYLOAD) == DOC_SIGNATURE
    assert verify_signature(DOC_API_SECRET, f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE}")


@pytest.mark.parametrize(
    "total",
    [
        DOC_PAYLOAD.replace("price=0.1", "price=0.2") + f"&signature={DOC_SIGNATURE}",
        DOC_PAYLOAD + "&signature=" + "0" * 64,
        DOC_PAYLOAD,  # no signature at all
    ],
)
def test_fake_verifier_rejects_tampered_or_missing_signature(total: str) -> None:
    assert not verify_signature(DOC_API_SECRET, total)


def test_python_binance_signing_path_matches_documented_vector() -> None:
    client = Client(DOC_API_KEY, DOC_API_SECRET, ping=False)
    assert client._hmac_signature(DOC_PAYLOAD) == DOC_SIGNATURE
    # the library signs the parameters it sends; the fake checks them the same way
    params = dict(p.split("=") for p in DOC_PAYLOAD.split("&"))
    signed = client._generate_signature(params)
    ordered = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    assert verify_signature(DOC_API_SECRET, f"{ordered}&signature={signed}")


def _exchange(fake: FakeBinance, key: str, secret: str) -> BinanceExchange:
    cfg = ExchangeConfig(kind="binance-spot", base_url=fake.url, use_websocket=False)
    return BinanceExchange(cfg, BinanceCredentials(SecretStr(key), SecretStr(secret)))


def test_signed_order_with_doc_keys_is_accepted_and_carries_key_header_and_short_window() -> None:
    with FakeBinance() as fake:
        ex = _exchange(fake, DOC_API_KEY, DOC_API_SECRET)
        ex.place_order(OrderIntent("BTCUSDT", Side.BUY, Decimal("50000"), Decimal("0.001"), "sig1"))
        posts = [p for m, e, p in fake.requests if (m, e) == ("POST", "order")]
        assert len(posts) == 1 and int(posts[0]["recvWindow"]) <= 5000
        assert fake.accepted["sig1"] == 1
        assert any(h.get("X-MBX-APIKEY") == DOC_API_KEY for h in fake.headers_seen)


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [(DOC_API_KEY, "wrong-secret", -1022), ("wrong-key", DOC_API_SECRET, -2015)],
)
def test_wrong_secret_or_key_is_a_definite_reject_and_places_nothing(
    key: str, secret: str, code: int
) -> None:
    with FakeBinance() as fake:
        ex = _exchange(fake, key, secret)
        with pytest.raises(DefiniteReject) as info:
            ex.place_order(
                OrderIntent("BTCUSDT", Side.BUY, Decimal("50000"), Decimal("0.001"), "s2")
            )
        assert info.value.code == code
        assert fake.accepted == {}
