"""The HTTP API's body reading and parsing: hostile bodies get a 4xx naming the problem, never
a 500, and an oversized body is refused before (or while) it is read. No Ray cluster needed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from serve import deployments as D

GOOD = [0.1] * 15


def _parse(raw: bytes | str) -> object:
    return D._parse_body(raw.encode() if isinstance(raw, str) else raw)


def _status(raw: bytes | str) -> tuple[int, str]:
    with pytest.raises(HTTPException) as info:
        _parse(raw)
    return info.value.status_code, str(info.value.detail)


def test_a_good_body_gives_its_observation() -> None:
    assert _parse(json.dumps({"observation": GOOD})) == GOOD


@pytest.mark.parametrize("depth", [5_000, 100_000])
@pytest.mark.parametrize("where", ["top", "observation"])
def test_deep_nesting_is_a_422_not_a_recursion_error(depth, where) -> None:
    nested = "[" * depth + "]" * depth
    body = nested if where == "top" else '{"observation": ' + nested + "}"
    code, detail = _status(body)
    assert code == 422 and "nest" in detail and str(D.MAX_JSON_DEPTH) in detail


def test_nesting_is_capped_at_the_named_depth() -> None:
    ok = '{"observation": ' + "[" * (D.MAX_JSON_DEPTH - 1) + "]" * (D.MAX_JSON_DEPTH - 1) + "}"
    assert _parse(ok) is not None  # depth MAX_JSON_DEPTH: parsed (the model check says why not)
    deeper = '{"observation": ' + "[" * D.MAX_JSON_DEPTH + "]" * D.MAX_JSON_DEPTH + "}"
    code, detail = _status(deeper)
    assert code == 422 and str(D.MAX_JSON_DEPTH) in detail
    code, _ = _status('{"observation": [' + '{"a": ' * 10 + "1" + "}" * 10 + "]}")
    assert code == 422


@pytest.mark.parametrize("text", ["[" * 50, '\\"' + "{" * 50, "\\\\" + "[" * 50, "]" * 9 + "[" * 9])
def test_brackets_inside_strings_do_not_count_as_nesting(text) -> None:
    body = json.dumps({"observation": [text, {"k[[[[[[[[[[": "]]]]"}]})
    assert _parse(body) == [text, {"k[[[[[[[[[[": "]]]]"}]


@pytest.mark.parametrize("digits", [400, 4_000, 5_000, 100_000])
def test_a_huge_integer_is_a_422_naming_it(digits) -> None:
    big = "1" * digits
    code, detail = _status('{"observation": [' + big + ", " + ", ".join(["0.1"] * 14) + "]}")
    assert code == 422 and "integer" in detail and str(digits) in detail
    assert len(detail) < 300  # the number itself is not echoed back


def test_ordinary_integers_still_parse() -> None:
    assert _parse('{"observation": [1, -2, 300000000000000000000]}') == [1, -2, 3 * 10**20]


def test_nan_and_infinity_are_left_to_the_observation_check() -> None:
    # the model's check names the value ("observation[0] is nan"); parsing lets them through
    obs = _parse('{"observation": [NaN, Infinity, -Infinity, 1e400]}')
    assert isinstance(obs, list) and len(obs) == 4


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"", 400, "not valid JSON"),
        (b"\xff\xfe\x00", 400, "not valid JSON"),
        (b"observation=1", 400, "not valid JSON"),
        (b'"\\ud800"', 422, "JSON object"),
        (b"[1]", 422, "JSON object"),
        (b'{"obs": []}', 422, '"observation"'),
        (b'{"observation": [], "x": 1}', 422, "unknown keys"),
    ],
)
def test_other_bad_bodies_keep_their_4xx(raw, code, words) -> None:
    got, detail = _status(raw)
    assert got == code and words in detail


# ----------------------------------------------------------------------- body size


def _request(chunks: Iterable[bytes], content_length: str | None) -> tuple[Request, list[int]]:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", content_length.encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/models/x",
        "query_string": b"",
        "headers": headers,
    }
    parts = list(chunks)
    received: list[int] = []

    async def receive() -> dict:
        i = len(received)
        received.append(i)
        if i >= len(parts):
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": parts[i], "more_body": i + 1 < len(parts)}

    return Request(scope, receive), received


def _read(chunks: Iterable[bytes], content_length: str | None) -> tuple[bytes, list[int]]:
    request, received = _request(chunks, content_length)
    return asyncio.run(D._read_body(request)), received


def test_the_limit_is_one_mib() -> None:
    assert D.MAX_BODY_BYTES == 1024 * 1024


def test_a_body_under_the_limit_is_read_whole() -> None:
    body = json.dumps({"observation": GOOD}).encode()
    got, _ = _read([body[:10], body[10:]], str(len(body)))
    assert got == body
    got, _ = _read([body], None)
    assert got == body


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    request, received = _request([b"x" * 1024] * 10, str(150 * 1024 * 1024))
    with pytest.raises(HTTPException) as info:
        asyncio.run(D._read_body(request))
    assert info.value.status_code == 413 and "1 MiB" in str(info.value.detail)
    assert received == []  # not one chunk read


def test_an_undeclared_body_is_counted_while_read_and_stopped_at_the_limit() -> None:
    chunk = b"x" * (64 * 1024)
    request, received = _request([chunk] * 2400, None)  # 150 MiB, chunked
    with pytest.raises(HTTPException) as info:
        asyncio.run(D._read_body(request))
    assert info.value.status_code == 413 and "1 MiB" in str(info.value.detail)
    assert len(received) <= D.MAX_BODY_BYTES // len(chunk) + 1


def test_a_body_longer_than_it_declared_is_stopped_at_the_limit() -> None:
    request, _ = _request([b"x" * (D.MAX_BODY_BYTES + 1)], "10")
    with pytest.raises(HTTPException) as info:
        asyncio.run(D._read_body(request))
    assert info.value.status_code == 413


@pytest.mark.parametrize("value", ["abc", "-1", "1_000", "1e3", "9" * 5000])
def test_a_bad_or_absurd_content_length_is_a_4xx(value) -> None:
    request, received = _request([b"{}"], value)
    with pytest.raises(HTTPException) as info:
        asyncio.run(D._read_body(request))
    assert info.value.status_code in (400, 413) and received == []


def test_a_handle_caller_sending_a_huge_integer_gets_a_validation_error() -> None:
    from serve.models import InvalidObservation, validate_observation

    with pytest.raises(InvalidObservation, match="beyond the float range"):
        validate_observation([10**400] + [0.0] * 14, 15)
