"""Benchmark: Ray Serve latency and batched throughput of one swarm model on this machine.

    python scripts/bench_serve.py [--json] [--quick]

In one run, on a local Ray cluster of ``num_cpus`` CPUs:

- ``handle_p50_ms`` / ``handle_p99_ms``: one request at a time through a DeploymentHandle
  (``handle.predict.remote(obs).result()``), the way one agent asks its model;
- ``actor_p50_ms``: the same work (validate, forward pass, answer) as a bare Ray actor method
  call, the yardstick for Serve's own cost;
- ``batched_rps``: answers per second for ``callers`` concurrent callers, each sending its next
  request as soon as it has its answer (many swarms sharing the deployment), so that
  ``@serve.batch`` merges their observations into shared forward passes.

Observations are drawn before the clock starts. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import ray
from ray import serve

from serve.app import ModelAppArgs, build_app, registry_path


@dataclass
class Config:
    model: str = "risk_manager"  # registry model under test
    models_dir: str = "models"  # the model registry
    num_cpus: int = 2  # CPUs of the local Ray cluster
    requests: int = 2000  # single requests timed through the handle and the actor
    warmup: int = 200  # untimed requests first (imports, JIT of code paths, connections)
    callers: int = 128  # concurrent callers for the batched figure
    batched_s: float = 6.0  # seconds the batched load runs (after a 1 s warm-up)
    max_batch_size: int = 64  # @serve.batch max_batch_size
    batch_wait_timeout_s: float = 0.0  # @serve.batch batch_wait_timeout_s
    max_ongoing_requests: int = 128  # per replica
    max_queued_requests: int = 256  # per caller (handle)
    torch_threads: int = 1  # torch intra-op threads in the replica
    seed: int = 0


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1e3, q))


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


def time_calls(call, observations: list[list[float]], warmup: int) -> list[float]:
    for obs in observations[:warmup]:
        call(obs)
    times = []
    for obs in observations[warmup:]:
        t0 = time.perf_counter()
        call(obs)
        times.append(time.perf_counter() - t0)
    return times


async def batched_load(handle, observations: list[list[float]], callers: int, seconds: float):
    """(answers per second, rejected, largest error) of ``callers`` closed-loop callers."""
    done, rejected, stop_at = 0, 0, 0.0
    errors: list[str] = []

    async def caller(i: int) -> None:
        nonlocal done, rejected
        k = i
        while time.perf_counter() < stop_at:
            try:
                await handle.predict.remote(observations[k % len(observations)])
                done += 1
            except Exception as exc:  # counted and reported, not hidden
                rejected += 1
                errors.append(type(exc).__name__)
            k += callers

    stop_at = time.perf_counter() + 1.0  # warm-up round, not counted
    await asyncio.gather(*(caller(i) for i in range(callers)))
    done, rejected, errors = 0, 0, []
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(caller(i) for i in range(callers)))
    return done / (time.perf_counter() - t0), rejected, sorted(set(errors))


BENCH_APP = "serve_bench"  # its own application: never replaces a running swarm_models


def run(cfg: Config) -> dict:
    """Measure; on a new local cluster, or on the connected one (then only its app is removed)."""
    own_cluster = not ray.is_initialized()
    if own_cluster:
        ray.init(address="local", num_cpus=cfg.num_cpus, include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(cfg.seed)
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
        handle = serve.get_deployment_handle(cfg.model, app_name=BENCH_APP)
        dim = handle.metadata.remote().result()["observation_dim"]
        observations = rng.normal(size=(cfg.warmup + cfg.requests, dim)).round(4).tolist()

        handle_times = time_calls(
            lambda o: handle.predict.remote(o).result(), observations, cfg.warmup
        )
        actor = BareModel.remote(str(registry_path(cfg.models_dir)), cfg.model, cfg.torch_threads)
        actor_times = time_calls(
            lambda o: ray.get(actor.predict.remote(o)), observations, cfg.warmup
        )
        ray.kill(actor)

        before = handle.metadata.remote().result()
        rps, rejected, errors = asyncio.run(
            batched_load(handle, observations, cfg.callers, cfg.batched_s)
        )
        after = handle.metadata.remote().result()
        rows = after["rows_answered"] - before["rows_answered"]
        passes = max(1, after["forward_passes"] - before["forward_passes"])
        handle_p50, actor_p50 = percentile_ms(handle_times, 50), percentile_ms(actor_times, 50)
        return {
            "handle_p50_ms": round(handle_p50, 3),
            "handle_p99_ms": round(percentile_ms(handle_times, 99), 3),
            "actor_p50_ms": round(actor_p50, 3),
            "actor_p99_ms": round(percentile_ms(actor_times, 99), 3),
            "handle_to_actor_p50": round(handle_p50 / actor_p50, 2),
            "batched_rps": round(rps),
            "batched_mean_batch": round(rows / passes, 1),
            "batched_rejected": rejected,
            "batched_errors": errors,
            "load_avg_1m_before": round(load_before, 2),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
            "config": asdict(cfg),
        }
    finally:
        if own_cluster:
            serve.shutdown()
            ray.shutdown()
        else:
            serve.delete(BENCH_APP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    for name, default in asdict(Config()).items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=type(default),
            default=None,
            help=f"default {default}",
        )
    ns = parser.parse_args()
    cfg = Config(requests=100, warmup=20, callers=16, batched_s=1.0) if ns.quick else Config()
    overrides = {k: v for k, v in vars(ns).items() if k in asdict(cfg) and v is not None}
    cfg = Config(**{**asdict(cfg), **overrides})
    result = run(cfg)
    if ns.json:
        print(json.dumps(result))
        return
    print(f"Ray Serve, model {cfg.model}, {cfg.num_cpus} CPUs")
    for key in ("handle_p50_ms", "handle_p99_ms", "actor_p50_ms", "actor_p99_ms"):
        print(f"  {key:<22}{result[key]:>10.3f}")
    print(f"  {'handle_to_actor_p50':<22}{result['handle_to_actor_p50']:>10.2f}   (target <= 4)")
    print(
        f"  {'batched_rps':<22}{result['batched_rps']:>10d}   (target >= 1500, "
        f"{cfg.callers} callers, {result['batched_rejected']} rejected)"
    )


if __name__ == "__main__":
    main()
