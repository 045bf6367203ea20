"""A Flywheel client that never hurts the app it lives in: bounded, time-limited, fork-safe."""

from flywheel_client.client import Flywheel, Stats

__all__ = ["Flywheel", "Stats"]
