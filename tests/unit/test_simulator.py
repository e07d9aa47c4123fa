from __future__ import annotations

from collections import Counter
from datetime import timedelta

import orjson

from streams.contracts.events import ChangeEvent
from streams.simulator import DealSimulator
from tests.unit.helpers import T0


def test_simulator_is_seeded_and_realistic() -> None:
    a = list(DealSimulator(seed=3).stream(T0, timedelta(seconds=1), 3000))
    b = list(DealSimulator(seed=3).stream(T0, timedelta(seconds=1), 3000))
    assert a == b
    ops: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    invalid = 0
    for _, value in a:
        try:
            ev = ChangeEvent.model_validate_json(value)
        except ValueError:
            invalid += 1
            continue
        ops[ev.op.value] += 1
        if "stage" in ev.fields:
            stages[str(ev.fields["stage"])] += 1
    assert ops["create"] > 100 and ops["update"] > 1000
    assert stages["Won"] > 10 and stages["Lost"] > 10
    assert 0 < invalid < 60  # a little broken input, for the dead-letter topic
    dirty = sum(1 for _, v in a if b'"tbd"' in v or b'"amount":null' in v)
    assert dirty > 0
    assert all(orjson.loads(v) for _, v in a[:10])
