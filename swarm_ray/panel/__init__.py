"""The swarm's control panel in the browser: every symbol's PnL, inventory, quotes and votes,
its orders with their explanations, and the stop and kill-switch controls behind a token.

- :mod:`~swarm_ray.panel.app`: the FastAPI app (page, static files, JSON API).
- :mod:`~swarm_ray.panel.data`: what it reads from and writes to a run's journals.
- :mod:`~swarm_ray.panel.auth`: the operator token.
- :mod:`~swarm_ray.panel.live`: a running swarm's coordinators, on Ray.
- :mod:`~swarm_ray.panel.deploy`: the app as a Ray Serve deployment.
"""
