"""The Ray Serve deployments: thin wrappers around ``serve.models`` and the HTTP API.

``ModelDeployment`` hosts one registry model (one deployment per model, named after it);
``ModelsAPI`` is the HTTP ingress (FastAPI) that forwards to them through handles.
Options (replicas, queues, CPUs) are set by ``serve.app.build_app``, not here.
"""

# No ``from __future__ import annotations``: FastAPI must see real classes (``Request``) in
# the route signatures that ``serve.ingress`` re-binds.

import asyncio
import contextlib
import json
import logging
import math
import re
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from serve.models import (
    InvalidObservation,
    ModelServer,
    ModelUnavailable,
    validate_observation,
)

logger = logging.getLogger("ray.serve")


def limit_torch_threads(n: int) -> None:
    """One intra-op thread per replica by default: a forward pass takes ~0.1 ms, so more
    threads only add hand-off cost, and several replicas share two cores."""
    import torch

    torch.set_num_threads(n)
    # the inter-op pool can be sized only once per process, before it is used
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(n)


@serve.deployment
class ModelDeployment:
    """One registry model. ``predict`` is batched across callers; ``predict_many`` is one pass."""

    def __init__(
        self,
        models_dir: str,
        name: str,
        max_batch_size: int,
        batch_wait_timeout_s: float,
        torch_threads: int,
    ) -> None:
        limit_torch_threads(torch_threads)
        self._server = ModelServer(models_dir, name, max_batch_size, batch_wait_timeout_s)
        self._lock = asyncio.Lock()
        self._apply_batching()

    def _apply_batching(self) -> None:
        self._predict_batch.set_max_batch_size(self._server.max_batch_size)
        self._predict_batch.set_batch_wait_timeout_s(self._server.batch_wait_timeout_s)

    async def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Serve the version ``user_config`` names; the replica keeps answering meanwhile."""
        config = self._server.parse_config(user_config)
        async with self._lock:
            model = None
            if self._server.needs_load(config):
                # load off the event loop so requests keep flowing on the current version
                model = await asyncio.to_thread(self._server.load, config.version)
            old = self._server.model.version if self._server.loaded else None
            self._server.install(config, model)
            self._apply_batching()
        if model is not None:
            logger.info("%s: now serving %s (was %s)", self._server.name, model.version, old)

    async def check_health(self) -> None:
        """Fails (and Serve replaces the replica) when the model cannot answer a probe."""
        if not self._server.loaded:
            # no user_config was given: serve the newest version
            async with self._lock:
                if not self._server.loaded:
                    await asyncio.to_thread(self._server.ensure_loaded)
        self._server.check_health()

    async def predict(self, observation: Any) -> dict[str, Any]:
        """Answer one observation; concurrent callers share one forward pass."""
        row = self._server.validate(observation)  # a bad input fails its own caller only
        answer = await self._predict_batch(row)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0)
    async def _predict_batch(self, rows: list[Any]) -> list[dict[str, Any] | Exception]:
        await self._server.drill_delay()
        return self._server.answer_rows(rows)

    async def predict_many(self, observations: Any) -> list[dict[str, Any]]:
        """Answer many observations (n, dim) in one forward pass, in order."""
        await self._server.drill_delay()
        return self._server.answer_batch(observations)

    async def metadata(self) -> dict[str, Any]:
        meta = self._server.metadata()
        meta["replica"] = serve.get_replica_context().replica_id.unique_id
        return meta


api = FastAPI(
    title="swarm-ray models",
    description="The swarm's models on Ray Serve: metadata and predictions.",
)


def _message(exc: BaseException) -> str:
    """The user exception's own message, without the remote traceback Ray wraps around it."""
    return str(exc.cause) if isinstance(exc, RayTaskError) else str(exc)


MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the HTTP API reads (1 MiB); a larger one is refused with 413."""
MAX_JSON_DEPTH = 8
"""Deepest nesting of arrays and objects in a request body (an observation needs 2)."""


class _NumberTooLarge(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(text: str) -> int:
    """A JSON integer, refused when no float can hold it (the model reads float32)."""
    if not math.isfinite(float(text)):  # float() of any length is cheap; int() is not
        raise _NumberTooLarge(len(text.lstrip("-")))
    return int(text)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# brackets as steps of the nesting depth (+1 open, -1 close), everything else dropped
_OPEN, _CLOSE = b"[{", b"]}"
_STEPS = bytes.maketrans(_OPEN + _CLOSE, b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(_OPEN + _CLOSE)))


def _json_depth(raw: bytes) -> int:
    """How deep arrays/objects nest in ``raw`` (brackets inside strings do not count), found
    on the bytes before parsing, so a deep body is never built (tens of ms for 1 MiB)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets.translate(_STEPS), dtype=np.int8).astype(np.int32)
    return int(steps.cumsum().max())


def _parse_body(raw: bytes) -> Any:
    """The ``observation`` of a request body; 400/422 naming what is wrong, never a 500."""
    too_deep = f"request body nests arrays/objects more than {MAX_JSON_DEPTH} levels deep"
    if _json_depth(raw) > MAX_JSON_DEPTH:
        raise HTTPException(422, too_deep)
    try:
        body = json.loads(raw, parse_int=_parse_int)
    except _NumberTooLarge as exc:
        raise HTTPException(
            422, f"request body has an integer of {exc.digits} digits, beyond the float range"
        ) from None
    except RecursionError:  # not reached after the depth check; kept as a guard
        raise HTTPException(422, too_deep) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"request body is not valid JSON: {exc}") from None
    except (ValueError, OverflowError) as exc:  # any other number the parser cannot hold
        raise HTTPException(
            422, f"request body has a number that cannot be read: {exc}"[:200]
        ) from None
    if not isinstance(body, dict):
        raise HTTPException(
            422, f'request body must be a JSON object {{"observation": [...]}}, got {body!r:.60}'
        )
    if "observation" not in body:
        raise HTTPException(422, 'request body has no "observation" key')
    extra = sorted(set(body) - {"observation"})
    if extra:
        raise HTTPException(422, f"request body has unknown keys {extra}"[:200])
    return body["observation"]


def _too_large() -> HTTPException:
    return HTTPException(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes (1 MiB)")


async def _read_body(request: Request) -> bytes:
    """The request body, at most ``MAX_BODY_BYTES``: a larger declared Content-Length is
    refused before anything is read, and the bytes are counted while read (a body may be
    chunked, or longer than it declared)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not declared.isascii() or not declared.isdigit():
            raise HTTPException(400, f"Content-Length is not a byte count: {declared!r:.40}")
        if len(declared) > len(str(MAX_BODY_BYTES)) or int(declared) > MAX_BODY_BYTES:
            raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@serve.deployment
@serve.ingress(api)
class ModelsAPI:
    """HTTP: ``GET /models``, ``GET /models/<name>``, ``POST /models/<name>``."""

    def __init__(self, models: dict[str, DeploymentHandle], request_timeout_s: float) -> None:
        # by value over gRPC: see serve.client
        self._models = {n: h.options(_by_reference=False) for n, h in models.items()}
        self._timeout_s = request_timeout_s
        self._dims: dict[str, int] = {}

    def _handle(self, name: str) -> DeploymentHandle:
        handle = self._models.get(name)
        if handle is None:
            raise HTTPException(404, f"no model {name!r}; served models: {sorted(self._models)}")
        return handle

    async def _call(self, name: str, response: Any) -> Any:
        try:
            return await asyncio.wait_for(response, self._timeout_s)
        except TimeoutError:
            raise HTTPException(
                504, f"model {name!r} did not answer within {self._timeout_s:g} s"
            ) from None
        except BackPressureError as exc:
            retry = str(max(1, math.ceil(exc.retry_after_s or 1)))
            raise HTTPException(
                503, f"model {name!r} is overloaded: {exc}", headers={"Retry-After": retry}
            ) from None
        except InvalidObservation as exc:
            raise HTTPException(422, _message(exc)) from None
        except ModelUnavailable as exc:
            raise HTTPException(503, _message(exc)) from None

    async def _observation_dim(self, name: str) -> int:
        dim = self._dims.get(name)
        if dim is None:  # asked once per model: versions of a model share their inputs
            meta = await self._call(name, self._handle(name).metadata.remote())
            dim = self._dims[name] = int(meta["observation_dim"])
        return dim

    @api.get("/models")
    async def list_models(self) -> dict[str, Any]:
        names = sorted(self._models)
        metas = await asyncio.gather(
            *(self._call(n, self._models[n].metadata.remote()) for n in names)
        )
        return {"models": list(metas)}

    @api.get("/models/{name}")
    async def model_metadata(self, name: str) -> dict[str, Any]:
        return await self._call(name, self._handle(name).metadata.remote())

    @api.post("/models/{name}")
    async def predict(self, name: str, request: Request) -> dict[str, Any]:
        handle = self._handle(name)
        observation = _parse_body(await _read_body(request))
        try:
            # checked here too, so that bad input never reaches (or logs errors in) a model
            row = validate_observation(observation, await self._observation_dim(name))
        except InvalidObservation as exc:
            raise HTTPException(422, str(exc)) from None
        return await self._call(name, handle.predict.remote(row))
