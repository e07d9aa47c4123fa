"""HTTP surfaces of alerting: ``GET /alerts``, ``GET|POST /silences``, ``DELETE /silences/{id}``.

Reads are open (bound to ``web_host``, loopback by default); writes need the bearer token
(``Settings.api_token``), compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from streams.contracts.silences import Silence
from streams.runtime.container import Runtime

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def authorize(pulse: Runtime, request: Any) -> tuple[int, str] | None:
    """``None`` when the request may write, else (status, reason)."""
    settings = pulse.settings
    if settings.api_token is None:
        if settings.api_auth_disabled:
            return None
        return 503, "write API disabled: set CRM_PULSE_API_TOKEN"
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.api_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        return 401, "missing or wrong bearer token"
    return None


def silence_from_request(data: Any, now: Any) -> Silence:
    """A :class:`Silence` from a request body: ``starts_at`` defaults to now, ``duration``
    (ISO 8601 or seconds) may replace ``ends_at``, ``id`` defaults to a random one."""
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    body = dict(data)
    body.setdefault("id", "s-" + secrets.token_hex(6))
    body.setdefault("starts_at", now.isoformat())
    duration = body.pop("duration", None)
    if duration is not None and "ends_at" not in body:
        from datetime import datetime

        start = datetime.fromisoformat(str(body["starts_at"]).replace("Z", "+00:00"))
        body["ends_at"] = (start + _DURATION.validate_python(duration)).isoformat()
    return Silence.model_validate(body)


def register(app: Any, pulse: Runtime) -> None:
    from faust.web import View

    rt = pulse.alerting

    @app.page("/alerts")
    async def alerts(web: Any, request: Any) -> Any:
        query = request.query
        try:
            limit = int(query.get("limit", 500))
            found = rt.board.query(
                status=query.get("status"), owner=query.get("owner"), rule=query.get("rule"),
                limit=max(1, min(limit, 5000)),
            )  # fmt: skip
        except ValueError as exc:
            return web.json({"error": str(exc)}, status=400)
        return web.json({"count": len(found), "alerts": found})

    async def _write(view: Any, request: Any, silence: Silence | None, silence_id: str) -> Any:
        value = silence.model_dump_json().encode() if silence is not None else None
        await rt.silences_topic.send(key=silence_id.encode(), value=value)
        if silence is None:
            rt.silences.remove(silence_id)
        else:
            rt.silences.put(silence)

    @app.page("/silences")
    class Silences(View):
        async def get(self, request: Any) -> Any:
            now = pulse.engine.clock()
            book = rt.silences
            active = {s.id for s in book.active(now)}
            return self.json({"silences": [
                {**orjson.loads(s.model_dump_json()), "active": s.id in active}
                for s in book.all() if s.ends_at > now
            ]})  # fmt: skip

        async def post(self, request: Any) -> Any:
            denied = authorize(pulse, request)
            if denied is not None:
                return self.json({"error": denied[1]}, status=denied[0])
            try:
                silence = silence_from_request(await request.json(), pulse.engine.clock())
            except ValidationError as exc:
                return self.json({"error": "invalid silence", "details": [
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()
                ]}, status=422)  # fmt: skip
            except (ValueError, orjson.JSONDecodeError) as exc:
                return self.json({"error": str(exc)}, status=422)
            await _write(self, request, silence, silence.id)
            return self.json(orjson.loads(silence.model_dump_json()), status=201)

    @app.page("/silences/{silence_id}")
    class SilenceItem(View):
        async def delete(self, request: Any, silence_id: str) -> Any:
            denied = authorize(pulse, request)
            if denied is not None:
                return self.json({"error": denied[1]}, status=denied[0])
            await _write(self, request, None, silence_id)
            return self.json({"deleted": silence_id})
