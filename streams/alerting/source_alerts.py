"""What the CRM sources add to alerts (pure): gap alerts and links to the CRM record.

* :func:`gap_alert`: a change the CRM could not describe (Salesforce ``GAP_*``) leaves the
  state of its records unknown until a re-sync; it is raised as a data-quality alert
  (rule id :data:`GAP_RULE_ID`, severity warning) naming the CRM object and the record ids.
  Its ``alert_id`` derives from the source and the gap's own event id, so a redelivered gap
  is the same alert (consumers deduplicate on ``alert_id`` + ``sequence``).
* :class:`RecordLinks`: the ``record_url`` templates of the source mappings, by entity
  kind; :meth:`RecordLinks.apply` adds the link to the record to every alert about one.
  A record's state does not remember which source wrote it: when several sources map the
  same entity kind with a URL, an alert carries one link per source, each titled with its
  source id.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from streams.contracts.alerts import (
    AlertEvent,
    AlertLink,
    AlertStatus,
    Severity,
    Subject,
    bounded_links,
)
from streams.sources.base import Gap

GAP_RULE_ID = "source-gap"
#: Ids named in a gap alert's evidence (a GAP_OVERFLOW may name thousands).
GAP_IDS_SHOWN = 50


def gap_alert(gap: Gap, received_at: datetime, links: Sequence[AlertLink] = ()) -> AlertEvent:
    """The data-quality alert of one gap (FIRING, a point alert: never resolved)."""
    ids = list(gap.entity_ids)
    what = gap.crm_object or (gap.entity.value if gap.entity else "record")
    if len(ids) == 1:
        subject_id, named = ids[0], f"{what} {ids[0]}"
    elif ids:
        subject_id, named = what, f"{len(ids)} {what} records"
    else:
        subject_id, named = what, f"every {what} record"
    key = f"{GAP_RULE_ID}|{gap.source_id}|{gap.event_id or ','.join(ids)}|{gap.change_type}"
    alert_id = hashlib.sha256(key.encode()).hexdigest()[:24]
    when = gap.occurred_at or received_at
    return AlertEvent(
        alert_id=alert_id,
        status=AlertStatus.FIRING,
        rule_id=GAP_RULE_ID,
        rule_version=1,
        severity=Severity.WARNING,
        subject=Subject(
            kind="entity", entity=gap.entity.value if gap.entity else None, id=subject_id
        ),
        title=f"{gap.source_id}: {gap.change_type} on {named}: state unknown until a re-sync",
        message=(
            f"Source {gap.source_id} reported {gap.change_type} for {named}: the change "
            f"carried no field values, so CRM Pulse does not know the current state of "
            f"{'this record' if len(ids) == 1 else 'these records'} until a re-sync. "
            f"{gap.detail}"
        ).strip(),
        evidence={
            "source": gap.source_id,
            "crm_object": gap.crm_object,
            "change_type": gap.change_type,
            "entity_ids": ids[:GAP_IDS_SHOWN],
            "entity_ids_count": len(ids),
            "detail": gap.detail,
        },
        event_ids=[gap.event_id] if gap.event_id else [],
        fired_at=when,
        occurred_at=gap.occurred_at,
        links=list(links),
    )


@dataclass(frozen=True, slots=True)
class LinkTemplate:
    source_id: str
    crm_object: str
    template: str

    def url(self, entity: str, record_id: str) -> str:
        return self.template.format_map(
            {
                "id": urllib.parse.quote(record_id, safe=""),
                "entity": entity,
                "object": urllib.parse.quote(self.crm_object, safe=""),
                "source": self.source_id,
            }
        )


@dataclass(frozen=True)
class RecordLinks:
    """Record URL templates by entity kind (the first object of each source per kind)."""

    by_entity: dict[str, tuple[LinkTemplate, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, sources: Iterable[object]) -> RecordLinks:
        """From configured sources (``id`` and ``mapping.objects``; disabled ones left out)."""
        found: dict[str, list[LinkTemplate]] = {}
        for source in sources:
            if not getattr(source, "enabled", True):
                continue
            source_id = str(getattr(source, "id", ""))
            mapping = getattr(source, "mapping", None)
            for name, obj in getattr(mapping, "objects", {}).items():
                if not obj.record_url:
                    continue
                kind = obj.entity.value
                kept = found.setdefault(kind, [])
                if all(t.source_id != source_id for t in kept):
                    kept.append(LinkTemplate(source_id, name, obj.record_url))
        return cls({k: tuple(v) for k, v in found.items()})

    def for_record(self, entity: str | None, record_id: str) -> list[AlertLink]:
        if not entity:
            return []
        return [
            AlertLink(rel="record", url=t.url(entity, record_id), title=t.source_id)
            for t in self.by_entity.get(entity, ())
        ]

    def apply(self, alerts: Sequence[AlertEvent]) -> list[AlertEvent]:
        """The alerts, those about one record with its links (others unchanged)."""
        if not self.by_entity:
            return list(alerts)
        out = []
        for alert in alerts:
            subject = alert.subject
            if alert.links or subject.kind != "entity" or alert.rule_id == GAP_RULE_ID:
                out.append(alert)
                continue
            links = bounded_links(self.for_record(subject.entity, subject.id))
            out.append(alert.model_copy(update={"links": links}) if links else alert)
        return out
