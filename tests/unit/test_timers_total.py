"""Timer scans and KPI rules are total: one unreadable state never stops them."""

from __future__ import annotations

from streams.judge.logic import timer_change
from streams.judge.state import EntityState, encode_dict
from streams.org import OrgDirectory
from tests.unit.poison import T0, starter_rules
from tests.unit.rulekit import judge_timers


def test_timer_event_of_a_maximum_length_event_id_is_built() -> None:
    state = EntityState.from_dict({"ids": ["e" * 200], "f": {"stage": "Won"}, "o": 12345})
    assert state is not None
    change = timer_change(b"deal:D1", state, T0, None)
    assert change.event.event_id == "e" * 200 + "@timer"
    assert change.event.owner_id == "12345"


def test_timer_scan_skips_unreadable_states_and_judges_the_others() -> None:
    store = {
        b"deal:BAD1": b"{broken",
        b"deal:BAD2": encode_dict({"p": [1], "f": {}}),
        b"deal:BAD3": encode_dict({"p": 0, "f": {}, "a": {"deal-owner-missing": 5}}),
        b"deal:OK": encode_dict({"p": 0, "f": {"stage": "Won"}, "ids": ["e1"]}),
    }
    result = judge_timers(starter_rules(), list(store), store.get, T0, OrgDirectory())
    assert b"deal:OK" in result.writes
    assert not {b"deal:BAD1", b"deal:BAD2"} & set(result.writes)
    assert result.stats.processing_errors["timer"] >= 2
    assert result.due[b"deal:BAD1"] is None
