"""CLI command modules; each defines ``register(app)`` and is picked up automatically by ``moeguard.cli``."""
