"""A stand-in for the Faust app the shipper is given: its producer, and a crash that is
recorded instead of stopping anything (the unit tests of the shipper read it)."""

from __future__ import annotations

from typing import Any


class CrashRecordingApp:
    """What the shipper uses of the app: ``producer`` and ``crash``."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.crashed: list[BaseException] = []

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)
