"""The learning loop inside ``swarm-ray run``: a learning step every ``learning.every`` of the
run's clock (the replay's time on the paper exchange, the wall clock on a venue), as a Ray task
beside the swarm.

The driver only polls: it never waits for a step, so the coordinators' cycles go on while
challengers train (with ``cpus`` of the learning config, at most; the swarm's actors keep the
CPUs they hold). A step that promotes rolls the new version out on Serve, which the agents ask
from the next cycle on; its decisions go to ``<journal_dir>/learning.sqlite``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray

from swarm_ray.core.config import ConfigError, resolve_path
from swarm_ray.learning.config import LearnConfig, load_learn_config, parse_duration

__all__ = ["LearningSchedule"]

log = logging.getLogger(__name__)

JOURNAL_FILE = "learning.sqlite"


@ray.remote(max_retries=0)
def _learn_task(
    config: dict[str, Any], day: str, models_dir: str, work_dir: str, journal: str
) -> list[dict[str, Any]]:
    """One learning step on the cluster; its decisions as JSON."""
    from datetime import date

    from swarm_ray.journal import Journal
    from swarm_ray.learning.loop import learn_step

    cfg = LearnConfig.model_validate(config)
    with Journal(journal, run_id="learning") as j:
        step = learn_step(cfg, date.fromisoformat(day), models_dir, work_dir, journal=j)
    return [d.to_json() for d in step.decisions]


def _absolute(path: str) -> str:
    return str(Path(resolve_path(path)).resolve())


class LearningSchedule:
    """Starts a learning step when the run's clock passes the next due time; one at a time."""

    @classmethod
    def for_run(cls, run: Any) -> LearningSchedule:
        """The schedule of a swarm run (its ``learning`` section), checked and resolved on the
        driver: the learning config's files made absolute, the run's registry (the one its Serve
        app serves) and journal folder, the work folder under the run's storage root. A bad
        learning config, or a registry inside a Ray job's temporary package, is a
        ``ConfigError`` now, not at the first step."""
        from swarm_ray.core.storage import in_ray_job_package, storage_root
        from swarm_ray.runtime.config import resolve_storage

        every = run.learning.every
        if every is None:
            raise ConfigError("learning.every is not set")
        path = resolve_path(run.learning.config)
        learn = load_learn_config(path)
        learn = learn.model_copy(
            update={
                "data": tuple(_absolute(d) for d in learn.data),
                "train_config": _absolute(learn.train_config),
                "backtest_config": _absolute(learn.backtest_config),
            }
        )
        resolved = resolve_storage(run)
        if in_ray_job_package(resolved.models_dir):
            raise ConfigError(
                f"learning: the registry {resolved.models_dir} is inside a Ray job's working-dir "
                "package, which is deleted with the job; set SWARM_RAY_STORAGE (or storage:) to "
                "a shared folder holding the registry"
            )
        work = storage_root(run.storage).local_path(learn.work_dir, f"{path}: work_dir")
        return cls(learn, every, resolved.models_dir, work, resolved.journal_dir)

    def __init__(
        self,
        cfg: LearnConfig,
        every: str,
        models_dir: str | Path,
        work_dir: str | Path,
        journal_dir: str | Path,
    ) -> None:
        self.cfg = cfg
        self.every_ns = int(parse_duration(every) * 1e9)
        self.models_dir = str(models_dir)
        self.work_dir = str(work_dir)
        self.journal = str(Path(journal_dir) / JOURNAL_FILE)
        self.next_due_ns: int | None = None
        self.pending: Any = None
        self.pending_day: str | None = None
        self.steps = 0
        self.decisions: list[dict[str, Any]] = []

    def poll(self, run_ns: int | None) -> list[str]:
        """Check on the running step or start a due one; never blocks. Returns lines to show."""
        lines: list[str] = []
        if self.pending is not None:
            ready, _ = ray.wait([self.pending], timeout=0)
            if not ready:
                return lines
            try:
                found = ray.get(self.pending)
                self.decisions += found
                for d in found:
                    lines.append(f"learning {self.pending_day}: {d['role']}: {d['decision']}: "
                                 f"{d['reason']}")  # fmt: skip
            except Exception as exc:  # the swarm goes on with its champions
                lines.append(f"learning {self.pending_day}: the step failed: {exc}")
                log.error("learning step %s failed: %s", self.pending_day, exc)
            self.pending, self.pending_day = None, None
            self.steps += 1
        if run_ns is None:
            return lines
        if self.next_due_ns is None:
            self.next_due_ns = run_ns + self.every_ns
        if run_ns < self.next_due_ns:
            return lines
        while self.next_due_ns <= run_ns:  # a clock that jumped ahead starts one step, not many
            self.next_due_ns += self.every_ns
        day = datetime.fromtimestamp(run_ns / 1e9, UTC).date().isoformat()
        self.pending_day = day
        # the judgement's backtests run in the task itself: it holds a CPU of the learning
        # budget while they run (Ray lends it back while the task waits for the Tune trials)
        task = _learn_task.options(num_cpus=min(1.0, self.cfg.cpus))
        self.pending = task.remote(
            self.cfg.model_dump(mode="json"), day, self.models_dir, self.work_dir, self.journal
        )
        lines.append(f"learning {day}: step started (challengers train beside the swarm)")
        return lines

    @property
    def running(self) -> bool:
        return self.pending is not None

    def cancel(self) -> None:
        """Stop the running step (the run is over)."""
        if self.pending is not None:
            ray.cancel(self.pending, force=True)
            self.pending, self.pending_day = None, None
