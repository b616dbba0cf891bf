"""Benchmark: Ray Serve latency and batched throughput of one swarm model on this machine.

    python scripts/bench_serve.py [--json] [--quick] [--callers 256 ...]

In one run, on a new local Ray cluster of ``num_cpus`` CPUs (or the connected one):

- ``handle_p50_ms`` / ``handle_p99_ms``: one request at a time through a DeploymentHandle
  (``await model_handle(name).predict(obs)``, by value over gRPC, router on the caller's
  event loop);
- ``actor_p50_ms``: the same work (validate, forward pass, answer) as a bare Ray actor method
  call, the yardstick for what Serve itself costs;
- ``batched_rps``: answers per second for ``callers`` concurrent callers, each sending its next
  request as soon as it has its answer (many swarms sharing the deployment), so that
  ``@serve.batch`` merges their observations into shared forward passes;
- extras: the same through a default (by reference) handle, the mean batch, and the machine's
  load average before and after (the figures are only as quiet as the machine).

Observations are drawn before the clock starts. Figures are printed, never asserted.
"""

from __future__ import annotations

import os

# serve.client.CALLER_ENV, set before Ray Serve is imported (it is read once, at import)
os.environ.setdefault("RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP", "0")

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import ray
from ray import serve

from serve.app import ModelAppArgs, build_app, registry_path
from serve.client import model_handle

APP = ModelAppArgs()  # the application's defaults are what is measured unless overridden
BENCH_APP = "serve_bench"  # its own application: never replaces a running swarm_models


@dataclass
class Config:
    model: str = "risk_manager"  # registry model under test
    models_dir: str = "models"  # the model registry
    num_cpus: int = 2  # CPUs of the local Ray cluster
    requests: int = 2000  # single requests timed through each handle and the actor
    warmup: int = 200  # untimed requests first
    callers: int = 256  # concurrent callers for the batched figure (<= max_ongoing_requests)
    batched_s: float = 6.0  # seconds each batched load runs (after a 1 s warm-up)
    by_reference: bool = True  # also measure a default (by reference) handle
    max_batch_size: int = APP.max_batch_size  # @serve.batch max_batch_size
    batch_wait_timeout_s: float = APP.batch_wait_timeout_s  # @serve.batch batch_wait_timeout_s
    max_ongoing_requests: int = APP.max_ongoing_requests  # per replica
    max_queued_requests: int = APP.max_queued_requests  # per caller
    torch_threads: int = APP.torch_threads  # torch intra-op threads in the replica
    seed: int = 0


@ray.remote(num_cpus=0)
class BareModel:
    """The yardstick: the same ``ModelServer`` in a plain actor."""

    def __init__(self, models_dir: str, name: str, torch_threads: int) -> None:
        from serve.deployments import limit_torch_threads
        from serve.models import ModelServer

        limit_torch_threads(torch_threads)
        self.server = ModelServer(models_dir, name, 1, 0.0)
        self.server.ensure_loaded()

    def predict(self, observation: list[float]) -> dict:
        return self.server.answer_rows([self.server.validate(observation)])[0]


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1e3, q))


async def time_calls(call, observations: list[list[float]], warmup: int) -> list[float]:
    for obs in observations[:warmup]:
        await call(obs)
    times = []
    for obs in observations[warmup:]:
        t0 = time.perf_counter()
        await call(obs)
        times.append(time.perf_counter() - t0)
    return times


async def batched_load(handle, observations: list[list[float]], callers: int, seconds: float):
    """(answers per second, rejected, error names) of ``callers`` closed-loop callers."""
    done, rejected, stop_at = 0, 0, 0.0
    errors: set[str] = set()

    async def caller(i: int) -> None:
        nonlocal done, rejected
        k = i
        while time.perf_counter() < stop_at:
            try:
                await handle.predict(observations[k % len(observations)])
                done += 1
            except Exception as exc:  # counted and reported, not hidden
                rejected += 1
                errors.add(type(exc).__name__)
            k += callers

    stop_at = time.perf_counter() + 1.0  # warm-up round, not counted
    await asyncio.gather(*(caller(i) for i in range(callers)))
    done, rejected, errors = 0, 0, set()
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(caller(i) for i in range(callers)))
    return done / (time.perf_counter() - t0), rejected, sorted(errors)


async def measure(cfg: Config) -> dict:
    handle = model_handle(cfg.model, BENCH_APP)
    by_ref = model_handle(cfg.model, BENCH_APP, by_value=False)
    dim = (await handle.metadata())["observation_dim"]
    rng = np.random.default_rng(cfg.seed)
    observations = rng.normal(size=(cfg.warmup + cfg.requests, dim)).round(4).tolist()
    res: dict = {}
    times = await time_calls(lambda o: handle.predict(o), observations, cfg.warmup)
    res["handle_p50_ms"] = percentile_ms(times, 50)
    res["handle_p99_ms"] = percentile_ms(times, 99)

    actor = BareModel.remote(str(registry_path(cfg.models_dir)), cfg.model, cfg.torch_threads)
    times = await time_calls(lambda o: actor.predict.remote(o), observations, cfg.warmup)
    ray.kill(actor)
    res["actor_p50_ms"] = percentile_ms(times, 50)
    res["actor_p99_ms"] = percentile_ms(times, 99)
    res["handle_to_actor_p50"] = res["handle_p50_ms"] / res["actor_p50_ms"]

    before = await handle.metadata()
    rps, rejected, errors = await batched_load(handle, observations, cfg.callers, cfg.batched_s)
    after = await handle.metadata()
    rows = after["rows_answered"] - before["rows_answered"]
    res["batched_rps"] = rps
    res["batched_mean_batch"] = rows / max(1, after["forward_passes"] - before["forward_passes"])
    res["batched_rejected"], res["batched_errors"] = rejected, errors

    if cfg.by_reference:
        times = await time_calls(lambda o: by_ref.predict(o), observations, cfg.warmup)
        res["by_reference_handle_p50_ms"] = percentile_ms(times, 50)
        rps, rejected, _ = await batched_load(by_ref, observations, cfg.callers, cfg.batched_s)
        res["by_reference_batched_rps"] = rps
        res["by_reference_batched_rejected"] = rejected
    return res


async def measure_then_stop(cfg: Config, own_cluster: bool) -> dict:
    try:
        return await measure(cfg)
    finally:
        if own_cluster:  # on the loop the handles' routers run on
            await serve.shutdown_async()


def run(cfg: Config) -> dict:
    """Measure; on a new local cluster, or on the connected one (then only its app is removed)."""
    own_cluster = not ray.is_initialized()
    if own_cluster:
        ray.init(address="local", num_cpus=cfg.num_cpus, include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    load_before = os.getloadavg()[0]
    try:
        args = ModelAppArgs(
            models_dir=cfg.models_dir,
            models=[cfg.model],
            max_batch_size=cfg.max_batch_size,
            batch_wait_timeout_s=cfg.batch_wait_timeout_s,
            max_ongoing_requests=cfg.max_ongoing_requests,
            max_queued_requests=cfg.max_queued_requests,
            torch_threads=cfg.torch_threads,
        )
        serve.run(build_app(args), name=BENCH_APP, route_prefix=None)
        res = asyncio.run(measure_then_stop(cfg, own_cluster))
    finally:
        if own_cluster:
            serve.shutdown()  # nothing left to do after a completed run
            ray.shutdown()
        else:
            serve.delete(BENCH_APP)
    res = {k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}
    res["load_avg_1m_before"] = round(load_before, 2)
    res["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    res["cores"] = os.cpu_count()
    res["config"] = asdict(cfg)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    for name, default in asdict(Config()).items():
        kind = type(default)
        if isinstance(default, bool):
            kind = lambda s: s.lower() in ("1", "true", "yes")  # noqa: E731
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                            help=f"default {default}")  # fmt: skip
    ns = parser.parse_args()
    cfg = Config()
    if ns.quick:
        cfg = Config(requests=100, warmup=20, callers=16, batched_s=1.0, by_reference=False)
    overrides = {k: v for k, v in vars(ns).items() if k in asdict(cfg) and v is not None}
    cfg = Config(**{**asdict(cfg), **overrides})
    res = run(cfg)
    if ns.json:
        print(json.dumps(res))
        return
    print(f"Ray Serve, model {cfg.model}, local cluster of {cfg.num_cpus} CPUs")
    rows = [
        ("handle_p50_ms", "one request at a time, serve.client.model_handle"),
        ("handle_p99_ms", ""),
        ("actor_p50_ms", "the same work as a bare Ray actor call"),
        ("handle_to_actor_p50", "target <= 4"),
        ("batched_rps", f"target >= 1500; {cfg.callers} concurrent callers"),
        ("batched_mean_batch", "observations per forward pass"),
        ("batched_rejected", ""),
        ("by_reference_handle_p50_ms", "a default handle (Ray actor transport)"),
        ("by_reference_batched_rps", ""),
    ]
    for key, note in rows:
        if key in res:
            print(f"  {key:<28}{res[key]:>10}   {note}")
    print(f"  load average (1 min) before/after: {res['load_avg_1m_before']}"
          f"/{res['load_avg_1m_after']} on {res['cores']} cores")  # fmt: skip


if __name__ == "__main__":
    main()
