"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.broker import Mosquitto


@pytest.fixture()
def broker(tmp_path: Path):
    """A private Mosquitto on a free port, with its own config and persistence (never the system one)."""
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()
