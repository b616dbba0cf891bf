"""Ray Serve application hosting the swarm's models."""
