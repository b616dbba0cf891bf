"""swarm-ray: a swarm of learned market-making agents on Ray."""

__version__ = "0.1.0"
