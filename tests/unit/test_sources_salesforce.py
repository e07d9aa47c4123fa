"""Salesforce Change Data Capture: fan-out, gaps, nulled and diff fields, compound fields."""

from __future__ import annotations

import copy

from streams.contracts.events import EntityKind, Op
from streams.sources.base import SourceRefusalReason as R
from tests.unit.sourcekit import docs, run

SAMPLES = docs("salesforce.jsonl")


def test_create_takes_every_non_null_field_through_the_mapping() -> None:
    (event,) = run("salesforce", SAMPLES[0]).events
    assert event.entity is EntityKind.DEAL and event.op is Op.CREATE
    assert event.entity_id == "0065g00000XyZ1AAAQ" and event.owner_id == "0055g00000OwNr1AAB"
    assert event.actor == "0055g00000AbCdEAAV"  # commitUser
    assert event.occurred_at.isoformat() == "2026-03-02T09:14:00+00:00"  # commitTimestamp
    assert event.fields["stage"] == "Prospecting" and event.fields["amount"] == 60000.0
    assert event.fields["next_step"] == "Discovery call"
    assert "loss_reason" not in event.fields  # null on create: not a value
    assert "SystemModstamp" not in event.fields  # dropped by the starter mapping
    assert event.event_id == "sf:0001a3b4-5c6d-7e8f-9a0b-c1d2e3f40001:1:0065g00000XyZ1AAAQ"


def test_several_record_ids_fan_out_one_event_each() -> None:
    events = run("salesforce", SAMPLES[1]).events
    assert [e.entity_id for e in events] == ["0065g00000XyZ1AAAQ", "0065g00000XyZ2AAAQ"]
    assert len({e.event_id for e in events}) == 2
    assert all(e.fields == events[0].fields for e in events)


def test_update_reads_changed_fields_only_and_nulls_nulled_fields() -> None:
    event = run("salesforce", SAMPLES[1]).events[0]
    # the Pub/Sub API sends Amount and OwnerId as null because they did not change
    assert event.fields == {"stage": "Qualification", "probability": 20.0, "next_step": None,
                            "modified_at": "2026-03-02T09:24:00.000Z"}  # fmt: skip
    assert event.changed == ["stage", "probability", "modified_at", "next_step"]
    assert event.op is Op.UPDATE and event.owner_id is None


def test_stage_names_map_to_the_pipeline_of_crm_pulse() -> None:
    doc = copy.deepcopy(SAMPLES[1])
    doc["StageName"] = "Closed Won"
    assert run("salesforce", doc).events[0].fields["stage"] == "Won"


def test_streaming_api_form_and_compound_address_are_flattened() -> None:
    (event,) = run("salesforce", SAMPLES[2]).events
    assert event.entity is EntityKind.ACCOUNT
    assert event.fields == {"billing_city": "Lyon", "billing_postal_code": "69002",
                            "LastModifiedDate": "2026-03-02T09:25:40.000Z"}  # fmt: skip
    assert event.changed == ["billing_city", "billing_postal_code", "LastModifiedDate"]


def test_diff_fields_are_not_read_as_values() -> None:
    (event,) = run("salesforce", SAMPLES[3]).events
    assert event.fields == {} and event.changed == ["Description"]


def test_delete_then_undelete_restores_the_record_with_its_fields() -> None:
    (deleted,) = run("salesforce", SAMPLES[4]).events
    (back,) = run("salesforce", SAMPLES[5]).events
    assert deleted.op is Op.DELETE and deleted.fields == {}
    assert back.op is Op.CREATE and back.entity is EntityKind.LEAD
    assert back.fields["first_name"] == "Dana" and back.fields["status"] == "Contacted"
    assert back.owner_id == "0055g00000OwNr2AAB"


def test_gap_events_are_gaps_not_data() -> None:
    gap_update = run("salesforce", SAMPLES[6])
    overflow = run("salesforce", SAMPLES[7])
    assert gap_update.events == [] and gap_update.refusals == []
    (gap,) = gap_update.gaps
    assert gap.change_type == "GAP_UPDATE" and gap.entity is EntityKind.DEAL
    assert gap.entity_ids == ("0065g00000XyZ3AAAQ", "0065g00000XyZ4AAAQ")
    assert gap.crm_object == "Opportunity" and gap.source_id == "salesforce"
    assert "0065g00000XyZ3AAAQ" in gap.detail and gap.occurred_at is not None
    (whole,) = overflow.gaps
    assert whole.change_type == "GAP_OVERFLOW" and whole.entity_ids == ()
    assert overflow.events == []


def test_gap_of_an_unmapped_object_is_still_reported() -> None:
    doc = copy.deepcopy(SAMPLES[6])
    doc["ChangeEventHeader"]["entityName"] = "Invoice__c"
    (gap,) = run("salesforce", doc).gaps
    assert gap.entity is None and gap.crm_object == "Invoice__c"


def test_bitmap_field_lists_fall_back_to_the_non_null_body() -> None:
    doc = copy.deepcopy(SAMPLES[1])
    doc["ChangeEventHeader"]["changedFields"] = ["0x1A", "3-0x01"]
    event = run("salesforce", doc).events[0]
    assert event.changed is None
    assert event.fields["stage"] == "Qualification" and "amount" not in event.fields


def test_refusals() -> None:
    def reason(header: dict) -> R:  # type: ignore[type-arg]
        doc = copy.deepcopy(SAMPLES[1])
        doc["ChangeEventHeader"].update(header)
        (refusal,) = run("salesforce", doc).refusals
        return refusal.reason

    assert reason({"changeType": "MERGE"}) is R.UNSUPPORTED_OPERATION
    assert reason({"entityName": "Invoice__c"}) is R.UNKNOWN_OBJECT
    assert reason({"recordIds": []}) is R.MISSING_ID
    assert reason({"recordIds": "006X"}) is R.INVALID_PAYLOAD
    assert reason({"commitTimestamp": None}) is R.MISSING_ID
    assert reason({"transactionKey": None}) is R.MISSING_ID
    assert reason({"entityName": None}) is R.INVALID_PAYLOAD
    assert run("salesforce", {"StageName": "x"}).refusals[0].reason is R.INVALID_PAYLOAD
