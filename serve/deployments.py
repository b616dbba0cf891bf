"""The Ray Serve deployments: thin wrappers around ``serve.models`` and the HTTP API.

``ModelsDeployment`` hosts every registry model in each of its replicas (a caller that needs
several models, as the swarm's coordinator does each cycle, asks once); ``ModelsAPI`` is the
HTTP ingress (FastAPI) that forwards to it through a handle.
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
    answer_models,
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
class ModelsDeployment:
    """Every registry model in one replica, so one request answers all the swarm's models.

    ``predict``/``predict_many``/``metadata`` take the model's name; ``predict_models`` answers
    several models in one call (the coordinator's one request per cycle). ``user_config`` maps
    each model's name to its ``ModelUserConfig`` (version, batching, drill latency).
    """

    def __init__(
        self,
        models_dir: str,
        names: list[str],
        max_batch_size: int,
        batch_wait_timeout_s: float,
        torch_threads: int,
    ) -> None:
        limit_torch_threads(torch_threads)
        self._servers = {
            n: ModelServer(models_dir, n, max_batch_size, batch_wait_timeout_s) for n in names
        }
        self._lock = asyncio.Lock()
        self._apply_batching()

    def _server(self, name: str) -> ModelServer:
        server = self._servers.get(name)
        if server is None:
            raise ModelUnavailable(f"no model {name!r}; served models: {sorted(self._servers)}")
        return server

    def _apply_batching(self) -> None:
        # one batcher serves every model: the largest batch and the shortest wait apply
        servers = self._servers.values()
        self._predict_batch.set_max_batch_size(max(s.max_batch_size for s in servers))
        self._predict_batch.set_batch_wait_timeout_s(min(s.batch_wait_timeout_s for s in servers))

    async def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Serve the versions ``user_config`` names; the replica keeps answering meanwhile."""
        user_config = user_config or {}
        unknown = sorted(set(user_config) - set(self._servers))
        if unknown:
            raise ModelUnavailable(
                f"user_config names models {unknown} this deployment does not serve; "
                f"served: {sorted(self._servers)}"
            )
        configs = {n: s.parse_config(user_config.get(n)) for n, s in self._servers.items()}
        async with self._lock:
            loaded = {}
            for name, config in configs.items():
                server = self._servers[name]
                if server.needs_load(config):
                    # off the event loop so requests keep flowing on the current versions
                    loaded[name] = await asyncio.to_thread(server.load, config.version)
            for name, config in configs.items():  # every version loaded: swap them together
                server = self._servers[name]
                old = server.model.version if server.loaded else None
                server.install(config, loaded.get(name))
                if name in loaded:
                    logger.info("%s: now serving %s (was %s)", name, loaded[name].version, old)
            self._apply_batching()

    async def check_health(self) -> None:
        """Fails (and Serve replaces the replica) when a model cannot answer a probe."""
        if not all(s.loaded for s in self._servers.values()):
            # no user_config was given: serve the newest versions
            async with self._lock:
                for s in self._servers.values():
                    if not s.loaded:
                        await asyncio.to_thread(s.ensure_loaded)
        for s in self._servers.values():
            s.check_health()

    async def predict(self, name: str, observation: Any) -> dict[str, Any]:
        """Answer one observation; concurrent callers share one forward pass per model."""
        row = self._server(name).validate(observation)  # bad input fails its own caller only
        answer = await self._predict_batch((name, row))
        if isinstance(answer, Exception):
            raise answer
        return answer

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0)
    async def _predict_batch(
        self, items: list[tuple[str, np.ndarray]]
    ) -> list[dict[str, Any] | Exception]:
        out: list[dict[str, Any] | Exception] = [ModelUnavailable("not answered")] * len(items)
        for name in dict.fromkeys(n for n, _ in items):
            server = self._servers[name]
            await server.drill_delay()
            idx = [i for i, (n, _) in enumerate(items) if n == name]
            for i, a in zip(idx, server.answer_rows([items[i][1] for i in idx]), strict=True):
                out[i] = a
        return out

    async def predict_many(self, name: str, observations: Any) -> list[dict[str, Any]]:
        """Answer many observations (n, dim) of one model in one forward pass, in order."""
        server = self._server(name)
        await server.drill_delay()
        return server.answer_batch(observations)

    async def predict_models(self, requests: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Answer several models at once: ``{name: (n, dim) rows}`` -> ``{name: answers}``,
        one forward pass per model. The swarm's coordinator asks this once per cycle."""
        servers = {name: self._server(name) for name in requests}
        delay = max((s.config.drill_latency_ms for s in servers.values()), default=0.0)
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        return answer_models(lambda name, rows: servers[name].answer_batch(rows), requests)

    async def metadata(self, name: str) -> dict[str, Any]:
        meta = self._server(name).metadata()
        meta["replica"] = serve.get_replica_context().replica_id.unique_id
        return meta

    async def names(self) -> list[str]:
        return list(self._servers)


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

    def __init__(
        self, models: DeploymentHandle, names: list[str], request_timeout_s: float
    ) -> None:
        self._models = models.options(_by_reference=False)  # by value over gRPC: serve.client
        self._names = list(names)
        self._timeout_s = request_timeout_s
        self._dims: dict[str, int] = {}

    def _known(self, name: str) -> str:
        if name not in self._names:
            raise HTTPException(404, f"no model {name!r}; served models: {sorted(self._names)}")
        return name

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
        if dim is None:  # asked once per model, and again when a row does not fit (a swap)
            meta = await self._call(name, self._models.metadata.remote(self._known(name)))
            dim = self._dims[name] = int(meta["observation_dim"])
        return dim

    @api.get("/models")
    async def list_models(self) -> dict[str, Any]:
        names = sorted(self._names)
        metas = await asyncio.gather(
            *(self._call(n, self._models.metadata.remote(n)) for n in names)
        )
        return {"models": list(metas)}

    @api.get("/models/{name}")
    async def model_metadata(self, name: str) -> dict[str, Any]:
        return await self._call(name, self._models.metadata.remote(self._known(name)))

    @api.post("/models/{name}")
    async def predict(self, name: str, request: Request) -> dict[str, Any]:
        self._known(name)
        observation = _parse_body(await _read_body(request))
        try:
            # checked here too, so that bad input never reaches (or logs errors in) a model
            dim = await self._observation_dim(name)
            try:
                row = validate_observation(observation, dim)
            except InvalidObservation:
                # a rollout may have swapped in a version of another observation layout: ask
                # the model once more before refusing
                self._dims.pop(name, None)
                if await self._observation_dim(name) == dim:
                    raise
                row = validate_observation(observation, self._dims[name])
        except InvalidObservation as exc:
            raise HTTPException(422, str(exc)) from None
        return await self._call(name, self._models.predict.remote(name, row))
