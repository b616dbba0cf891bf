"""The swarm's journal: a SQLite record of every cycle, vote, decision, order and fill.

``from swarm_ray.journal import Journal, CycleRecord`` is the way in; the specification is the
docstring of :mod:`swarm_ray.journal.store`.

- :mod:`~swarm_ray.journal.records`: the records written and the errors raised.
- :mod:`~swarm_ray.journal.schema`: the tables, statements and row conversions.
- :mod:`~swarm_ray.journal.store`: :class:`Journal`, its connection and writes.
- :mod:`~swarm_ray.journal.queries`: the reads, explanations and summaries.
- :mod:`~swarm_ray.journal.series`: time series of cycles and votes, agents' records, order search.
"""

from swarm_ray.journal.queries import UNRESOLVED_STATUSES
from swarm_ray.journal.records import (
    CycleRecord,
    DecisionRecord,
    DuplicateIntent,
    JournalError,
    JournalSchemaError,
    KillSwitch,
    StopRequest,
)
from swarm_ray.journal.schema import SCHEMA_VERSION
from swarm_ray.journal.store import NEVER_SENT, Journal

__all__ = [
    "NEVER_SENT",
    "SCHEMA_VERSION",
    "UNRESOLVED_STATUSES",
    "CycleRecord",
    "DecisionRecord",
    "DuplicateIntent",
    "Journal",
    "JournalError",
    "JournalSchemaError",
    "KillSwitch",
    "StopRequest",
]
