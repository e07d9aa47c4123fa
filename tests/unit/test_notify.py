"""Pure parts of the notifier: labels, Alertmanager mapping, open episodes, signing, retry."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.notify.alertmanager import labels_for
from streams.notify.episodes import OpenEpisodes
from streams.notify.labels import EMPTY, MAX_LABEL_LENGTH, bound_label
from streams.notify.retry import RetryPolicy, retryable_status
from streams.notify.signing import signature, signed_headers, verify
from streams.notify.targets import NotifierKind, load_webhooks
from streams.org import OrgDirectory, Person

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG = OrgDirectory({"rep-1": Person(manager="mgr-1", team="west-1", region="West")})


def alert(status: AlertStatus, seq: int, **kw: object) -> AlertEvent:
    base: dict[str, object] = dict(
        alert_id="a-1", status=status, rule_id="deal-stage-backwards", rule_version=1,
        severity=Severity.WARNING, subject=Subject(kind="entity", entity="deal", id="D-1"),
        owner_id="rep-1", title="Stage back", message="Deal D-1 moved back", fired_at=T0,
        sequence=seq,
    )  # fmt: skip
    base.update(kw)
    return AlertEvent.model_validate(base)


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_label_values_are_bounded_printable_and_never_empty(text: str) -> None:
    value = bound_label(text)
    assert 0 < len(value) <= MAX_LABEL_LENGTH
    assert all(ch.isprintable() or ch == " " for ch in value)
    assert value == value.strip() or value == EMPTY


def test_label_long_value_is_cut_with_ellipsis_and_none_is_explicit() -> None:
    assert bound_label("x" * 500).endswith("…")
    assert bound_label(None) == EMPTY
    assert bound_label("a\nb\tc") == "a b c"


def test_labels_come_from_the_org_directory_and_manager_only_when_escalated() -> None:
    firing = labels_for(alert(AlertStatus.FIRING, 1), ORG)
    assert firing == {
        "alertname": "deal-stage-backwards", "severity": "warning", "owner": "rep-1",
        "team": "west-1", "region": "West", "status": "firing", "subject_kind": "deal",
        "subject_id": "D-1", "source": "crm-pulse",
    }  # fmt: skip
    escalated = labels_for(alert(AlertStatus.ESCALATED, 2, escalated_to="mgr-1"), ORG)
    assert escalated["manager"] == "mgr-1" and escalated["status"] == "escalated"


def test_episode_lifecycle_posts_start_escalation_end_and_resolve() -> None:
    view = OpenEpisodes(ORG, record_url="https://crm.example/{entity}/{id}")
    [first] = view.apply(alert(AlertStatus.FIRING, 1), T0)
    assert first["startsAt"] == "2026-03-02T09:00:00Z" and "endsAt" not in first
    assert first["annotations"]["record_url"] == "https://crm.example/deal/D-1"
    assert first["annotations"]["message"] == "Deal D-1 moved back"
    now = T0 + timedelta(hours=1)
    ended, escalated = view.apply(alert(AlertStatus.ESCALATED, 2, escalated_to="mgr-1"), now)
    assert ended["labels"]["status"] == "firing" and ended["endsAt"] == now.isoformat()[:19] + "Z"
    assert escalated["labels"]["manager"] == "mgr-1" and "endsAt" not in escalated
    assert [p["labels"]["status"] for p in view.repost()] == ["escalated"]
    resolved_at = T0 + timedelta(hours=2)
    [resolved] = view.apply(alert(AlertStatus.RESOLVED, 3, resolved_at=resolved_at), now)
    assert resolved["labels"] == escalated["labels"]  # same fingerprint in Alertmanager
    assert resolved["endsAt"] == "2026-03-02T11:00:00Z"
    assert view.repost() == []
    # a resolved_at before fired_at (clock skew) still yields endsAt after startsAt
    view.apply(alert(AlertStatus.FIRING, 1, alert_id="a-9"), T0)
    [skewed] = view.apply(alert(AlertStatus.RESOLVED, 2, alert_id="a-9", resolved_at=T0), T0)
    parse = datetime.fromisoformat
    assert parse(skewed["endsAt"]) > parse(skewed["startsAt"])


def test_replayed_alerts_and_muted_alerts_post_nothing() -> None:
    view = OpenEpisodes(ORG)
    assert len(view.apply(alert(AlertStatus.FIRING, 1), T0)) == 1
    assert view.is_duplicate(alert(AlertStatus.FIRING, 1))
    assert view.apply(alert(AlertStatus.FIRING, 1), T0) == []
    muted = OpenEpisodes(ORG)
    assert muted.apply(alert(AlertStatus.FIRING, 1, notify=False), T0) == []
    assert muted.apply(alert(AlertStatus.RESOLVED, 2, notify=False), T0) == []
    assert muted.repost() == []
    assert view.apply(alert(AlertStatus.DIGEST, 9, alert_id="digest-1"), T0) == []


KPI = Subject(kind="kpi", id="k", scope="global")


def test_rebuilt_view_equals_the_live_one() -> None:
    """Replaying the same log (restart, rebalance) gives the same open episodes."""
    log = [
        alert(AlertStatus.FIRING, 1),
        alert(AlertStatus.FIRING, 1, alert_id="a-2", subject=KPI),
        alert(AlertStatus.ESCALATED, 2, escalated_to="mgr-1"),
        alert(AlertStatus.RESOLVED, 2, alert_id="a-2"),
    ]  # fmt: skip
    live, rebuilt = OpenEpisodes(ORG), OpenEpisodes(ORG)
    for a in log:
        live.apply(a, T0)
    for a in log:
        rebuilt.apply(a, T0 + timedelta(days=1))
    assert live.repost() == rebuilt.repost()
    assert [p["labels"]["subject_id"] for p in live.repost()] == ["D-1"]


def test_signature_verifies_like_a_receiver_and_rejects_tampering() -> None:
    body = alert(AlertStatus.FIRING, 1).model_dump_json().encode()
    now = int(time.time())
    headers = signed_headers("s3cret-s3cret-s3cret", now, body)
    sig, ts = headers["X-CRM-Pulse-Signature"], headers["X-CRM-Pulse-Timestamp"]
    assert sig.startswith("v1=") and len(sig) == 3 + 64
    assert verify("s3cret-s3cret-s3cret", ts, body, sig, now=now)
    assert not verify("other-secret-other", ts, body, sig, now=now)
    assert not verify("s3cret-s3cret-s3cret", ts, body + b" ", sig, now=now)
    assert not verify("s3cret-s3cret-s3cret", ts, body, sig, now=now + 3600)  # replayed late
    # the documented recipe, independently
    import hashlib
    import hmac

    expected = hmac.new(b"k" * 16, f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert signature("k" * 16, now, body) == f"v1={expected}"


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_bounded_by_the_exponential_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(max_attempts=6, base_s=0.5, cap_s=30.0)
    delay = policy.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(30.0, 0.5 * 2 ** (attempt - 1))


def test_retry_stops_at_max_attempts_and_only_on_transient_status() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.gives_up_after(n) for n in (1, 2, 3)] == [False, False, True]
    assert retryable_status(503) and retryable_status(429) and retryable_status(408)
    assert not retryable_status(400) and not retryable_status(404)


def test_webhooks_file_filters_and_hides_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "webhooks:\n"
        "  - {name: ops, url: 'http://127.0.0.1:9/x', secret: 'abcdefghijklmnop',\n"
        "     statuses: [ESCALATED], severities: [critical, warning]}\n"
    )
    [hook] = load_webhooks(path)
    assert "abcdefghijklmnop" not in repr(hook) and "abcdefghijklmnop" not in str(hook)
    assert hook.wants(alert(AlertStatus.ESCALATED, 2, escalated_to="mgr-1"))
    assert not hook.wants(alert(AlertStatus.FIRING, 1))
    assert not hook.wants(alert(AlertStatus.ESCALATED, 2, notify=False))
    assert not hook.wants(alert(AlertStatus.ESCALATED, 2, severity=Severity.INFO))
    path.write_text("webhooks:\n  - {name: ops, url: 'http://h/x', secret: short}\n")
    with pytest.raises(ValidationError):
        load_webhooks(path)
    assert load_webhooks(None) == []
    assert {k.value for k in NotifierKind} == {"alertmanager", "webhook"}


def test_point_alerts_end_after_the_hold_and_are_never_reposted() -> None:
    view = OpenEpisodes(ORG, point_rules=frozenset({"deal-stage-backwards"}))
    [posted] = view.apply(alert(AlertStatus.FIRING, 1), T0)
    assert posted["endsAt"] == "2026-03-02T10:00:00Z"  # fired_at + 1 h default hold
    assert view.repost() == []
    other = OpenEpisodes(ORG)  # same alert, stateful rule: stays open
    other.apply(alert(AlertStatus.FIRING, 1), T0)
    assert len(other.repost()) == 1


def test_point_rules_of_the_shipped_rule_pack() -> None:
    from streams.notify.rule_kinds import point_rule_ids
    from streams.rules.loader import load_paths
    from streams.rules.ruleset import compile_rule

    loaded = load_paths([Path(__file__).resolve().parents[2] / "rules"])
    compiled = [compile_rule(r.rule) for r in loaded.rules]
    points = point_rule_ids(compiled)
    assert "deal-stage-backwards" in points  # transition
    types = {c.id: c.spec.name for c in compiled}
    assert all(types[i] in ("transition", "frequency", "condition") for i in points)
    assert any(t == "condition" and i not in points for i, t in types.items())
