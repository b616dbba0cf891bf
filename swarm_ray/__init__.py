"""swarm-ray: a swarm of learned market-making agents on Ray.

``from swarm_ray import Swarm`` is the Python API (``swarm_ray.runtime.api``); it imports Ray
only when first used, so ``import swarm_ray`` stays light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Swarm", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Swarm":
        from swarm_ray.runtime.api import Swarm

        return Swarm
    raise AttributeError(f"module 'swarm_ray' has no attribute {name!r}")
