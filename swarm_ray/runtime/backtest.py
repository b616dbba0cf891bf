"""Backtest jobs as Ray tasks: every strategy-day in parallel over the cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ray

from swarm_ray.evaluation.harness import Job, run_job
from swarm_ray.evaluation.records import DayRecord

__all__ = ["run_on_ray"]

_CACHE: dict[str, Any] = {}


@ray.remote(num_cpus=1, max_retries=1)
def _run(job: Job) -> DayRecord:
    # models stay loaded in a worker between the jobs it runs
    return run_job(job, _CACHE)


def run_on_ray(jobs: Sequence[Job], done: Callable[[Job], None]) -> list[DayRecord]:
    """Run every job as a task (one CPU each); results in job order."""
    refs = [_run.remote(j) for j in jobs]
    index = {ref: i for i, ref in enumerate(refs)}
    out: list[DayRecord | None] = [None] * len(refs)
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            i = index[ref]
            out[i] = ray.get(ref)
            done(jobs[i])
    return [r for r in out if r is not None]
