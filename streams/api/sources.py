"""``POST /sources/<id>``: the HTTP sources (HubSpot webhooks, mapping webhooks).

In this order, for every request:

1. the body is read as bytes, at most ``4 x CRM_PULSE_MAX_EVENT_BYTES`` (413 beyond,
   the translators' own cap of a batch);
2. the signature is checked on those bytes **before** anything reads them as JSON:
   ``X-HubSpot-Signature-v3`` (HMAC-SHA256 over method, full URI, body and the
   ``X-HubSpot-Request-Timestamp``; older than the transport's ``max_age_s``, 5 minutes,
   is refused) or the mapping transport's ``signature_header`` (HMAC-SHA256 of the body):
   401 when missing, wrong or stale, and nothing is written;
3. the translator turns the body into change events, refusals and gaps (a body whose
   output records cannot be built is refused whole: ``translator_error``);
4. the worker's one shipper writes the events to ``crm.events``, the refusals to
   ``crm.events.dlq`` (the original bytes, the source id and the reason), the gap alerts to
   ``crm.alerts``, and the answer waits for the broker's acknowledgement of all of them, at
   most ``CRM_PULSE_SOURCE_ACK_TIMEOUT_S`` (4 s: HubSpot gives up after 5): 503 when it
   does not come (the sender retries; event ids are stable, so a retry is deduplicated);
5. 200 ``{"events", "refused", "gaps", "skipped"}`` once acknowledged; when nothing of the
   body could be translated, 400 (not JSON, empty, too large) or 422 (JSON of the wrong
   shape, or a body whose output cannot be built), after its dead letter is acknowledged:
   the sender should not retry it.

No bearer token: the signature is the authentication. Unknown ids answer 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from streams.runtime.container import Runtime
from streams.sources import (
    SourceRefusalReason,
    Translation,
    Translator,
    verify_hmac_sha256,
    verify_hubspot_signature_v3,
)

log = logging.getLogger(__name__)

#: A whole batch may be this many times one event's byte cap (the translators' own cap).
BATCH_BYTES_FACTOR = 4
#: Refusals of a whole body answered 400 (the bytes are not a JSON document we can read).
UNREADABLE = {
    SourceRefusalReason.INVALID_JSON,
    SourceRefusalReason.EMPTY_VALUE,
    SourceRefusalReason.TOO_LARGE,
}


async def read_capped(request: Any, limit: int) -> bytes | None:
    """The body's bytes, or ``None`` when it is over ``limit`` (never reads much past it)."""
    length = request.content_length
    if length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65_536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def signature_ok(source: Any, request: Any, body: bytes, now: Any) -> bool:
    """Whether the request is signed with the source's secret (pure apart from headers)."""
    config = source.config
    transport = config.transport
    headers = request.headers
    if config.type == "hubspot_webhook":
        uri = transport.public_url or str(request.url)
        return verify_hubspot_signature_v3(
            source.secret, request.method, uri, body,
            headers.get("X-HubSpot-Request-Timestamp"), headers.get("X-HubSpot-Signature-v3"),
            now, transport.max_age_s,
        )  # fmt: skip
    return verify_hmac_sha256(source.secret, body, headers.get(transport.signature_header))


def acknowledged_answer(translation: Translation) -> tuple[dict[str, Any], int]:
    """The answer to a request whose records the broker acknowledged: 200 with the counts;
    400 or 422 (with the first refusal's reason) when nothing of the body was translated."""
    counts: dict[str, Any] = {
        "events": len(translation.events), "refused": len(translation.refusals),
        "gaps": len(translation.gaps), "skipped": translation.skipped,
    }  # fmt: skip
    if translation.refusals and not (translation.events or translation.gaps):
        first = translation.refusals[0]
        counts.update(reason=first.reason.value, detail=first.detail)
        return counts, 400 if first.reason in UNREADABLE else 422
    return counts, 200


def register(
    pulse: Runtime,
    rt: Any,
    translate: Callable[[Translator, bytes], tuple[Translation, Any]],
    ship: Callable[[Any], Awaitable[None]],
) -> None:
    """Mount ``POST /sources/{source_id}`` for the HTTP sources of ``rt`` (``rt.http``:
    id -> config, translator, secret); ``translate(translator, body)`` gives the body's
    translation (counted) and its output, ``ship(output)`` returns once the broker
    acknowledged that output (:mod:`streams.agents.sources`)."""
    from faust.web import View

    app = pulse.app
    settings = pulse.settings
    limit = settings.max_event_bytes * BATCH_BYTES_FACTOR
    requests = pulse.metrics.source_requests

    @app.page("/sources/{source_id}")
    class SourceView(View):
        def answer(self, source_id: str, body: dict[str, Any], status: int) -> Any:
            requests.labels(source=source_id if source_id in rt.http else "(unknown)",
                            status=str(status)).inc()  # fmt: skip
            return self.json(body, status=status)

        async def post(self, request: Any, source_id: str) -> Any:
            source = rt.http.get(source_id)
            if source is None:
                return self.answer(source_id, {"error": f"no HTTP source {source_id!r}"}, 404)
            body = await read_capped(request, limit)
            if body is None:
                return self.answer(source_id, {"error": f"body over {limit} bytes"}, 413)
            now = pulse.engine.clock()
            if not signature_ok(source, request, body, now):
                log.warning("POST /sources/%s: bad, missing or stale signature (401)", source_id)
                return self.answer(source_id, {"error": "bad, missing or stale signature"}, 401)
            translation, output = translate(source.translator, body)
            try:
                await asyncio.wait_for(ship(output), settings.source_ack_timeout_s)
            except Exception as exc:  # not acknowledged: the sender retries
                log.warning("POST /sources/%s: Kafka did not acknowledge the request's "
                            "records (%s): 503", source_id, type(exc).__name__)  # fmt: skip
                return self.answer(
                    source_id, {"error": "not acknowledged by Kafka; retry later"}, 503
                )
            counts, status = acknowledged_answer(translation)
            return self.answer(source_id, counts, status)
