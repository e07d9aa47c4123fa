"""HubSpot webhook batches and the X-HubSpot-Signature-v3 check."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from datetime import timedelta

import orjson
from pydantic import SecretStr

from streams.contracts.events import EntityKind, Op
from streams.sources.base import SourceRefusalReason as R
from streams.sources.signatures import (
    hmac_sha256_hex,
    hubspot_signature_v3,
    verify_hmac_sha256,
    verify_hubspot_signature_v3,
)
from tests.unit.sourcekit import DATA, NOW, run

BATCH = orjson.loads((DATA / "hubspot.json").read_bytes())
SECRET = SecretStr("a7f1c2d3-app-secret")
URI = "https://pulse.example.com/sources/hubspot"


def by_event(event_id: int) -> list:  # type: ignore[type-arg]
    item = next(i for i in BATCH if i["eventId"] == event_id)
    return run("hubspot", [item]).events


def test_a_batch_translates_every_event_in_order() -> None:
    result = run("hubspot", BATCH)
    assert result.refusals == [] and len(result.events) == 13
    assert all(e.source == "hubspot" for e in result.events)
    assert len({e.event_id for e in result.events}) == 13


def test_creation_and_property_changes() -> None:
    (created,) = by_event(101)
    assert created.op is Op.CREATE and created.fields == {} and created.entity is EntityKind.DEAL
    (named,) = by_event(102)
    assert named.op is Op.UPDATE and named.fields == {"name": "Umbrella - pilot"}
    assert named.changed == ["name"] and named.actor == "userId:8123441"
    (amount,) = by_event(103)
    assert amount.fields == {"amount": 25000}  # HubSpot's text, as a number
    (close,) = by_event(112)
    assert close.fields == {"close_date": "2026-04-30"}  # epoch ms, as a date


def test_owner_change_sets_the_owner() -> None:
    (event,) = by_event(104)
    assert event.owner_id == "611732" and event.fields == {"owner_id": "611732"}


def test_legacy_deal_property_change_maps_stage_ids_to_names() -> None:
    (forward,) = by_event(105)
    (back,) = by_event(106)
    assert forward.fields == {"stage": "Negotiation"} and back.fields == {"stage": "Qualification"}
    assert forward.entity is EntityKind.DEAL


def test_unknown_stage_ids_are_kept_as_sent() -> None:
    item = dict(next(i for i in BATCH if i["eventId"] == 105), propertyValue="1234567")
    assert run("hubspot", [item]).events[0].fields == {"stage": "1234567"}


def test_merge_deletes_the_merged_records_and_updates_the_survivor() -> None:
    deleted, survivor = by_event(108)
    assert deleted.op is Op.DELETE and deleted.entity_id == "18374650555"
    assert survivor.op is Op.UPDATE and survivor.entity_id == "18374650999"
    assert survivor.fields == {"merged_object_ids": ["18374650555"]}


def test_merge_into_a_new_record_deletes_the_primary_too() -> None:
    item = dict(next(i for i in BATCH if i["eventId"] == 108), newObjectId=18374651000)
    events = run("hubspot", [item]).events
    assert [(e.entity_id, e.op) for e in events] == [
        ("18374650555", Op.DELETE), ("18374650999", Op.DELETE), ("18374651000", Op.UPDATE),
    ]  # fmt: skip


def test_deletion_and_restore() -> None:
    (deleted,) = by_event(109)
    (restored,) = by_event(110)
    assert deleted.op is Op.DELETE
    # a restore keeps the fields CRM Pulse knew: an update without fields, not a create
    assert restored.op is Op.UPDATE and restored.fields == {}
    assert restored.entity_id == deleted.entity_id and restored.event_id != deleted.event_id


def test_contact_lead_status() -> None:
    (event,) = by_event(111)
    assert event.entity is EntityKind.LEAD and event.fields == {"status": "Contacted"}


def test_a_retry_keeps_the_event_ids() -> None:
    retry = [dict(item, attemptNumber=2) for item in BATCH]
    assert [e.event_id for e in run("hubspot", retry).events] == [
        e.event_id for e in run("hubspot", BATCH).events
    ]


def test_one_bad_event_is_refused_alone_with_its_bytes() -> None:
    bad = {"subscriptionType": "object.associationChange", "objectId": 1, "occurredAt": 1}
    unmapped = dict(BATCH[1], objectTypeId="0-5")
    result = run("hubspot", [BATCH[1], bad, "x", unmapped, dict(BATCH[1], objectId=None)])
    assert len(result.events) == 1
    assert [r.reason for r in result.refusals] == [
        R.UNSUPPORTED_OPERATION, R.INVALID_PAYLOAD, R.UNKNOWN_OBJECT, R.MISSING_ID,
    ]  # fmt: skip
    assert result.refusals[0].raw == orjson.dumps(bad)
    assert result.refusals[0].detail.startswith("event 2 of 5:")


def test_whole_body_refusals() -> None:
    assert run("hubspot", b"").refusals[0].reason is R.EMPTY_VALUE
    assert run("hubspot", b"<xml/>").refusals[0].reason is R.INVALID_JSON
    assert run("hubspot", [BATCH[1]] * 1001).refusals[0].reason is R.TOO_LARGE


def _reference(method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's documented computation, written out independently of the module."""
    source = f"{method}{uri}".encode() + body + timestamp.encode()
    mac = hmac.new(b"a7f1c2d3-app-secret", source, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def test_signature_v3_accepted() -> None:
    body = orjson.dumps(BATCH)
    ts = str(int((NOW - timedelta(seconds=30)).timestamp() * 1000))
    signature = _reference("POST", URI, body, ts)
    assert hubspot_signature_v3(SECRET, "POST", URI, body, ts) == signature
    assert verify_hubspot_signature_v3(SECRET, "POST", URI, body, ts, signature, NOW)
    assert verify_hubspot_signature_v3(SECRET, "post", URI, body, ts, signature, NOW)


def test_signature_v3_tampered_refused() -> None:
    body = orjson.dumps(BATCH)
    ts = str(int(NOW.timestamp() * 1000))
    signature = _reference("POST", URI, body, ts)
    tampered = body.replace(b"contractsent", b"closedwon")
    assert not verify_hubspot_signature_v3(SECRET, "POST", URI, tampered, ts, signature, NOW)
    assert not verify_hubspot_signature_v3(SECRET, "POST", URI + "x", body, ts, signature, NOW)
    other = SecretStr("another-secret")
    assert not verify_hubspot_signature_v3(other, "POST", URI, body, ts, signature, NOW)
    later = str(int(ts) + 1)  # a timestamp changed after signing
    assert not verify_hubspot_signature_v3(SECRET, "POST", URI, body, later, signature, NOW)
    for missing in (None, ""):
        assert not verify_hubspot_signature_v3(SECRET, "POST", URI, body, ts, missing, NOW)
        assert not verify_hubspot_signature_v3(SECRET, "POST", URI, body, missing, signature, NOW)
    assert not verify_hubspot_signature_v3(SECRET, "POST", URI, body, "soon", signature, NOW)


def test_signature_v3_stale_refused() -> None:
    body = orjson.dumps(BATCH)
    for age_s in (301, 3600):
        ts = str(int((NOW - timedelta(seconds=age_s)).timestamp() * 1000))
        signature = _reference("POST", URI, body, ts)
        assert not verify_hubspot_signature_v3(SECRET, "POST", URI, body, ts, signature, NOW)
    ts = str(int((NOW - timedelta(seconds=299)).timestamp() * 1000))
    fresh = _reference("POST", URI, body, ts)
    assert verify_hubspot_signature_v3(SECRET, "POST", URI, body, ts, fresh, NOW)


def test_signature_v3_decodes_the_uri_like_hubspot() -> None:
    body = b"[]"
    ts = str(int(NOW.timestamp() * 1000))
    signed = _reference("POST", URI + "?a=b:c", body, ts)
    assert verify_hubspot_signature_v3(SECRET, "POST", URI + "?a=b%3Ac", body, ts, signed, NOW)


def test_shared_secret_hmac() -> None:
    body = b'{"meta": {"action": "change"}}'
    digest = hmac.new(b"a7f1c2d3-app-secret", body, hashlib.sha256).hexdigest()
    assert hmac_sha256_hex(SECRET, body) == f"sha256={digest}"
    assert verify_hmac_sha256(SECRET, body, f"sha256={digest}")
    assert verify_hmac_sha256(SECRET, body, digest.upper())
    assert not verify_hmac_sha256(SECRET, body + b" ", f"sha256={digest}")
    assert not verify_hmac_sha256(SECRET, body, None)
    assert not verify_hmac_sha256(SecretStr("other"), body, digest)


def test_secret_never_in_the_config_repr() -> None:
    from streams.sources.config import SecretRef

    ref = SecretRef(env="HS_SECRET")
    secret = ref.read({"HS_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(secret) and "s3cr3t-value" not in str(secret)
    assert secret.get_secret_value() == "s3cr3t-value"
    assert copy.copy(ref) == ref
