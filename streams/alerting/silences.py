"""The silences known to a worker and the matching of alerts against them (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import orjson
from pydantic import ValidationError

from streams.contracts.alerts import AlertEvent
from streams.contracts.silences import Silence


class SilenceBook:
    def __init__(self) -> None:
        self._silences: dict[str, Silence] = {}

    def put(self, silence: Silence) -> None:
        self._silences[silence.id] = silence

    def remove(self, silence_id: str) -> None:
        self._silences.pop(silence_id, None)

    def apply_record(self, key: bytes | None, value: bytes | None) -> str | None:
        """Apply one ``crm.silences`` record; returns an error text when it is unreadable."""
        if value is None:
            if key:
                self.remove(key.decode(errors="replace"))
            return None
        try:
            self.put(Silence.model_validate(orjson.loads(value)))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            return str(exc).splitlines()[0]
        return None

    def active(self, now: datetime) -> list[Silence]:
        return sorted(
            (s for s in self._silences.values() if s.starts_at <= now < s.ends_at),
            key=lambda s: s.id,
        )

    def all(self) -> list[Silence]:
        return sorted(self._silences.values(), key=lambda s: s.id)

    def match(
        self, alert: AlertEvent, now: datetime, team_of: Callable[[str | None], str | None]
    ) -> Silence | None:
        """The first active silence muting ``alert`` (expired ones never match)."""
        for silence in self.active(now):
            if matches(silence, alert, team_of):
                return silence
        return None


def matches(
    silence: Silence, alert: AlertEvent, team_of: Callable[[str | None], str | None]
) -> bool:
    return (
        (silence.rule_id is None or silence.rule_id == alert.rule_id)
        and (silence.owner_id is None or silence.owner_id == alert.owner_id)
        and (silence.subject_id is None or silence.subject_id == alert.subject.id)
        and (silence.team is None or (team_of(alert.owner_id) == silence.team))
    )
