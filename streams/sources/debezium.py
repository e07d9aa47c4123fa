"""Debezium change records (PostgreSQL, MySQL) as Kafka Connect's JSON converter writes them.

With ``value.converter.schemas.enable=true`` a record is ``{"schema": ..., "payload": ...}``
and the schema tells the logical types, which are decoded (``Decimal`` and
``VariableScaleDecimal`` to numbers, ``Date`` to ``YYYY-MM-DD``, the ``Timestamp`` family to
ISO 8601 text, ``Time`` to ``HH:MM:SS``); without it the record is the payload alone and
values are taken as written (set ``decimal.handling.mode=string`` or ``double`` then).

``op``: ``c`` -> create, ``u`` -> update, ``d`` -> delete, ``r`` (a snapshot read) ->
create with ``snapshot: true``: the engine stores the record's state and the KPIs count it,
but no rule judges it. A tombstone (null value, after a delete) is skipped, not refused;
``t`` (truncate) and ``m`` (logical decoding message) are refused as
``unsupported_operation``. ``fields`` is ``after`` (``{}`` on delete; columns holding
Debezium's ``__debezium_unavailable_value`` placeholder, an unchanged TOASTed PostgreSQL
value, are left out so the record keeps its value); ``changed`` names the
fields that differ between ``before`` and ``after`` when ``before`` is complete (MySQL,
PostgreSQL with ``REPLICA IDENTITY FULL``), else it is left out and the engine diffs
against the record's last state. ``occurred_at`` is ``source.ts_ms`` (the commit time).
``event_id``: ``dbz:<position>:<db.schema.table>:<id>:<op>`` where the position is
``lsn<LSN>`` (PostgreSQL) or ``<binlog file>:<pos>:<row>`` (MySQL): a redelivery of the
same change gets the same id.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from streams.contracts.events import Op
from streams.sources.base import (
    EventDraft,
    Refused,
    SourceRefusalReason,
    Translation,
    epoch_ms,
    finish,
    guarded,
    id_text,
    parse_json,
    stable_id,
)
from streams.sources.config import DebeziumSource
from streams.sources.fieldmap import FieldMap, MappedTranslator, find_map

R = SourceRefusalReason
_OPS = {"c": Op.CREATE, "u": Op.UPDATE, "d": Op.DELETE, "r": Op.CREATE}
_EPOCH = datetime(1970, 1, 1)
#: Debezium's ``unavailable.value.placeholder`` (default) for an unchanged TOASTed column.
UNAVAILABLE = "__debezium_unavailable_value"
Decoder = Callable[[Any], Any]


def _unscaled(value: Any) -> int:
    return int.from_bytes(base64.b64decode(value, validate=True), "big", signed=True)


def _number(unscaled: int, scale: int) -> int | float:
    if scale <= 0:
        return unscaled * int(10 ** (-scale))
    return float(Decimal(unscaled).scaleb(-scale).to_eng_string())


def _decimal(params: Mapping[str, Any]) -> Decoder:
    scale = int(params.get("scale", 0))
    return lambda v: _number(_unscaled(v), scale) if isinstance(v, str) else v


def _variable_decimal(value: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(value.get("value"), str):
        return _number(_unscaled(value["value"]), int(value.get("scale", 0)))
    return value


def _since_epoch(unit_s: float, with_zone: bool) -> Decoder:
    def decode(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return value
        moment = _EPOCH + timedelta(seconds=value * unit_s)
        return moment.replace(tzinfo=UTC).isoformat() if with_zone else moment.isoformat()

    return decode


def _days(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    return (date(1970, 1, 1) + timedelta(days=value)).isoformat()


def _time_of_day(unit_s: float) -> Decoder:
    def decode(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return value
        moment = _EPOCH + timedelta(seconds=value * unit_s)
        return time(moment.hour, moment.minute, moment.second, moment.microsecond).isoformat()

    return decode


_LOGICAL: dict[str, Callable[[Mapping[str, Any]], Decoder]] = {
    "org.apache.kafka.connect.data.Decimal": _decimal,
    "io.debezium.data.VariableScaleDecimal": lambda p: _variable_decimal,
    "org.apache.kafka.connect.data.Date": lambda p: _days,
    "io.debezium.time.Date": lambda p: _days,
    "org.apache.kafka.connect.data.Timestamp": lambda p: _since_epoch(1e-3, True),
    "io.debezium.time.Timestamp": lambda p: _since_epoch(1e-3, False),
    "io.debezium.time.MicroTimestamp": lambda p: _since_epoch(1e-6, False),
    "io.debezium.time.NanoTimestamp": lambda p: _since_epoch(1e-9, False),
    "org.apache.kafka.connect.data.Time": lambda p: _time_of_day(1e-3),
    "io.debezium.time.Time": lambda p: _time_of_day(1e-3),
    "io.debezium.time.MicroTime": lambda p: _time_of_day(1e-6),
    "io.debezium.time.NanoTime": lambda p: _time_of_day(1e-9),
}


def row_decoders(schema: Any) -> dict[str, Decoder]:
    """Column -> decoder of its logical type, from the envelope's ``before``/``after`` schema."""
    decoders: dict[str, Decoder] = {}
    if not isinstance(schema, Mapping):
        return decoders
    for part in schema.get("fields") or ():
        if not isinstance(part, Mapping) or part.get("field") not in ("before", "after"):
            continue
        for column in part.get("fields") or ():
            if not isinstance(column, Mapping):
                continue
            make = _LOGICAL.get(str(column.get("name")))
            name = column.get("field")
            if make is not None and isinstance(name, str):
                params = column.get("parameters")
                decoders[name] = make(params if isinstance(params, Mapping) else {})
        break  # before and after share one row schema
    return decoders


def _decode_row(row: Mapping[str, Any], decoders: Mapping[str, Decoder]) -> dict[str, Any]:
    if not decoders:
        return dict(row)
    out = {}
    for name, value in row.items():
        decoder = decoders.get(name)
        if decoder is not None and value is not None:
            try:
                value = decoder(value)
            except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
                raise Refused(R.INVALID_PAYLOAD, f"column {name}: {type(exc).__name__}") from None
        out[name] = value
    return out


def _position(source: Mapping[str, Any], ts_ms: Any) -> str:
    lsn = source.get("lsn")
    if lsn is not None:
        return f"lsn{lsn}"
    if source.get("file") is not None:
        return f"{source.get('file')}:{source.get('pos')}:{source.get('row', 0)}"
    return f"ts{ts_ms}:tx{source.get('txId')}"


def _unwrap(doc: Any) -> tuple[Any, Any]:
    """(payload, schema) of a record with or without the schema/payload envelope."""
    if isinstance(doc, dict) and "payload" in doc and "op" not in doc:
        return doc["payload"], doc.get("schema")
    return doc, None


class DebeziumTranslator(MappedTranslator[DebeziumSource]):
    """One Debezium source: its tables' mappings, compiled once."""

    def translate(self, raw: bytes | None, *, received_at: datetime) -> Translation:
        if not raw:
            return Translation(skipped=1)  # a tombstone (null value) follows every delete
        return guarded(raw, lambda: self._translate(raw, received_at))

    def _translate(self, raw: bytes, received_at: datetime) -> Translation:
        payload, schema = _unwrap(parse_json(raw, self.limits.max_event_bytes))
        if payload is None:
            return Translation(skipped=1)  # a tombstone written as JSON null
        if not isinstance(payload, dict):
            raise Refused(R.INVALID_PAYLOAD, "a Debezium change record is a JSON object")
        op_code = payload.get("op")
        if op_code not in _OPS:
            if op_code in ("t", "m"):
                raise Refused(R.UNSUPPORTED_OPERATION, f"op {op_code!r} is not translated")
            raise Refused(R.INVALID_PAYLOAD, f"op must be c, u, d or r, not {op_code!r}")
        source = payload.get("source")
        if not isinstance(source, dict):
            raise Refused(R.INVALID_PAYLOAD, "source (the record's origin) must be an object")
        fmap = self._table(source)
        decoders = row_decoders(schema)
        before, after = payload.get("before"), payload.get("after")
        for name, row in (("before", before), ("after", after)):
            if row is not None and not isinstance(row, dict):
                raise Refused(R.INVALID_PAYLOAD, f"{name} must be an object or null")
        before = _decode_row(before, decoders) if before is not None else None
        after = _decode_row(after, decoders) if after is not None else None
        row = before if op_code == "d" else after
        if row is None:
            side = "before" if op_code == "d" else "after"
            raise Refused(R.MISSING_ID, f"op {op_code!r} without {side}: no record id")
        id_field = fmap.id_field or "id"
        entity_id = id_text(row.get(id_field))
        if entity_id is None:
            raise Refused(R.MISSING_ID, f"the id column {id_field!r} is absent or blank")
        ts_ms = source.get("ts_ms", payload.get("ts_ms"))
        occurred_at = epoch_ms(ts_ms)
        if occurred_at is None:
            raise Refused(R.MISSING_ID, "no commit time (source.ts_ms)")
        op = _OPS[op_code]
        fields: dict[str, Any] = {}
        if after is not None and op is not Op.DELETE:
            # an unchanged TOASTed column (PostgreSQL) is a placeholder, not its value: left
            # out, the record keeps the value it had
            fields = fmap.fields({k: v for k, v in after.items() if v != UNAVAILABLE})
        changed = None
        if (
            op_code == "u"
            and before is not None
            and after is not None
            and before.keys() >= after.keys()
        ):
            changed = fmap.names(
                k for k, v in after.items() if v != UNAVAILABLE and before.get(k) != v
            )
        table = ".".join(str(source.get(k)) for k in ("db", "schema", "table") if source.get(k))
        draft = EventDraft(
            event_id=stable_id("dbz", _position(source, ts_ms), table, entity_id, op_code),
            source=self.source_id,
            entity=fmap.entity,
            entity_id=entity_id,
            op=op,
            occurred_at=occurred_at,
            fields=fields,
            actor=fmap.actor(row),
            owner_id=fmap.owner(row),
            changed=changed,
            snapshot=op_code == "r",
        )
        return Translation(events=[finish(draft, received_at, self.limits)])

    def _table(self, source: Mapping[str, Any]) -> FieldMap:
        table = source.get("table")
        if not isinstance(table, str) or not table:
            raise Refused(R.INVALID_PAYLOAD, "source.table is absent")
        schema, db = source.get("schema"), source.get("db")
        names = (f"{schema}.{table}" if schema else None, f"{db}.{table}" if db else None, table)
        fmap = find_map(self.maps, *names)
        if fmap is None:
            raise Refused(R.UNKNOWN_OBJECT, f"table {names[0] or names[1] or table} is not mapped")
        return fmap
