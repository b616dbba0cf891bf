"""The swarm from Python, beside the command line::

    from swarm_ray import Swarm

    swarm = Swarm("configs/paper.yaml").start()     # or Swarm(cfg, address="auto")
    swarm.status()                                  # every symbol's last cycle
    swarm.wait(timeout=60)                          # until the runs end (or the timeout)
    swarm.stop()                                    # after the current cycle
    swarm.stop(emergency=True, reason="...")        # kill switch + cancel every order

``swarm-ray run`` is this class plus a status line every few seconds.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from swarm_ray.core.config import ConfigError, load_config, parse_config, resolve_path
from swarm_ray.runtime import swarm as runtime
from swarm_ray.runtime.actors import NAMESPACE
from swarm_ray.runtime.config import SwarmConfig
from swarm_ray.runtime.connect import connect
from swarm_ray.runtime.learning import LearningSchedule

__all__ = ["Swarm"]

log = logging.getLogger(__name__)

LEARNING_POLL_S = 2.0
"""How often ``wait`` checks on the learning loop (it never waits for a step)."""


def _config(config: str | Path | SwarmConfig | Mapping[str, Any]) -> SwarmConfig:
    if isinstance(config, SwarmConfig):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = parse_config(SwarmConfig, dict(config), "Swarm(config)")
    elif isinstance(config, str | Path):
        cfg = load_config(resolve_path(config), SwarmConfig)
    else:
        raise ConfigError(f"Swarm(config): a path, a mapping or a SwarmConfig, not {config!r}")
    return runtime.resolve_journal_dir(cfg)


def _reason(exc: BaseException) -> str:
    """One line for a coordinator's failure: the error raised in the actor (not Ray's wrapper
    and remote traceback); a configuration error is its message alone."""
    cause = getattr(exc, "cause", None) if isinstance(exc, RayTaskError) else None
    err = cause if isinstance(cause, BaseException) else exc
    if isinstance(err, ConfigError):
        return str(err).strip().splitlines()[-1]
    first = str(err).strip().splitlines()
    return f"{type(err).__name__}: {first[0] if first else ''}"


class Swarm:
    """One swarm run: a coordinator actor per symbol (group), each hosting the four agents, and
    the model app on Serve, on the cluster at ``address`` (else ``RAY_ADDRESS``, else a local
    cluster of ``num_cpus``). The config is checked when the object is built, before any
    connection; a mainnet config needs ``yes_mainnet=True``."""

    def __init__(
        self,
        config: str | Path | SwarmConfig | Mapping[str, Any],
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        http_port: int | None = None,
        yes_mainnet: bool = False,
    ) -> None:
        self.config = _config(config)
        if self.config.exchange.is_mainnet and not yes_mainnet:
            raise ConfigError("this config trades real money on mainnet; pass yes_mainnet=True")
        self.address, self.num_cpus, self.http_port = address, num_cpus, http_port
        self._handles: dict[str, Any] = {}
        self._running: dict[str, Any] = {}
        self._cycles: int | None = None
        self._deployed = False
        self.finished: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, str] = {}
        self.learning: LearningSchedule | None = (
            LearningSchedule.for_run(self.config) if self.config.learning.every else None
        )
        """The scheduled learning loop (``learning.every``): polled while the run waits."""

    def __repr__(self) -> str:
        state = "running" if self._running else ("started" if self._handles else "not started")
        return f"Swarm(run_id={self.config.run_id!r}, symbols={list(self.config.symbols)}, {state})"

    @property
    def coordinators(self) -> dict[str, Any]:
        """Coordinator actor handles by name (``coordinator:BTCUSDT``)."""
        return {n: h for n, h in self._handles.items() if n.startswith("coordinator:")}

    def start(self, cycles: int | None = None) -> Swarm:
        """Connect, deploy the model app unless it runs, start the actors and their runs
        (``cycles`` rounds each, else until stopped or the replay ends). Returns ``self``."""
        if self._handles:
            raise RuntimeError(f"{self!r} is started already")
        connect(self.address, num_cpus=self.num_cpus, namespace=NAMESPACE)
        self._deployed = runtime.ensure_models_served(self.config, http_port=self.http_port)
        self._handles = runtime.start_swarm(self.config)
        self._cycles = cycles
        self._running = {n: h.run.remote(cycles) for n, h in self.coordinators.items()}
        return self

    def run_time_ns(self) -> int | None:
        """The run's clock: the time of the latest cycle of any of its symbols."""
        times = [
            (s.get("last") or {}).get("time_ns")
            for c in self.status().values()
            for s in (c.get("symbols") or {}).values()
        ]
        times = [int(t) for t in times if t is not None]
        return max(times) if times else None

    def status(self) -> dict[str, Any]:
        """Each of this swarm's coordinators' status: ``{name: {"symbols": {...}, ...}}``."""
        mine = set(self.coordinators)
        return {n: s for n, s in runtime.swarm_status().items() if n in mine}

    @property
    def running(self) -> bool:
        return bool(self._running)

    def wait(
        self,
        timeout: float | None = None,
        every: float | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> bool:
        """Wait until every coordinator's run has ended, or ``timeout`` seconds; True when all
        ended. A coordinator actor that dies is restarted by Ray and asked to carry on (it
        reconciles with the venue and the journal first); one that fails on an error is
        reported and left stopped (see ``failed``). ``on_status`` gets :meth:`status` every
        ``every`` seconds; ``on_event`` gets one line per finish, restart or failure."""
        say = on_event or (lambda line: log.info("%s", line))
        deadline = None if timeout is None else time.monotonic() + timeout
        last_status = time.monotonic()
        last_learning = -LEARNING_POLL_S  # at once, then every LEARNING_POLL_S
        while self._running:
            if self.learning is not None and time.monotonic() - last_learning >= LEARNING_POLL_S:
                last_learning = time.monotonic()
                for line in self.learning.poll(self.run_time_ns()):
                    say(line)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            wait_s = 1.0 if left is None else max(0.0, min(1.0, left))
            ready, _ = ray.wait(list(self._running.values()), num_returns=1, timeout=wait_s)
            for ref in ready:
                name = next(n for n, r in self._running.items() if r == ref)
                try:
                    self.finished[name] = ray.get(ref)
                    say(f"{name}: finished after {self.finished[name]['cycles']} cycles")
                    del self._running[name]
                except RayActorError:
                    say(f"{name}: actor died; it restarts and reconciles, then carries on")
                    time.sleep(1.0)
                    self._running[name] = self.coordinators[name].run.remote(self._cycles)
                except Exception as exc:  # a coordinator failed on an error: report, stop it
                    self.failed[name] = _reason(exc)
                    say(f"{name}: stopped on {self.failed[name]}")
                    del self._running[name]
            if on_status and every and time.monotonic() - last_status >= every:
                last_status = time.monotonic()
                on_status(self.status())
        return True

    def stop(
        self,
        emergency: bool = False,
        reason: str = "stopped from Python",
        operator: str | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        """Stop every coordinator after its current cycle (recorded in the journal with
        ``operator``, default the login name, and ``reason``). ``emergency`` also trips each
        symbol's kill switch and cancels every open order now. With ``wait``, returns once the
        runs have ended."""
        who = operator or getpass.getuser()
        refs = [h.stop.remote(emergency, reason, who) for h in self.coordinators.values()]
        out = dict(zip(self.coordinators, ray.get(refs), strict=True))
        if wait:
            self.wait(timeout=max(30.0, 5 * self.config.cycle.interval_s))
        return out

    def last_on_cluster(self) -> bool:
        """No other swarm's coordinator runs on this cluster (what the cluster-wide apps, the
        models and the panel, are left up for)."""
        return not set(runtime.find_coordinators()) - set(self.coordinators)

    def close(self) -> None:
        """Hand the model app back if this swarm deployed it (its CPUs go to the next job);
        the actors end with the driver."""
        if self.learning is not None and self.learning.running:
            log.warning(
                "the run ends during the learning step of %s; it is cancelled (a promotion "
                "it was making leaves the old or the new champion)",
                self.learning.pending_day,
            )
            self.learning.cancel()
        if self._deployed:
            # another swarm on this cluster may answer with the same app: leave it to that one
            if self.last_on_cluster():
                runtime.release_models()
            self._deployed = False

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._running:
                self.stop(reason="context exited")
        finally:
            self.close()
