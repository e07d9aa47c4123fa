"""``/rules``: list, read, create or replace (PUT) and delete live rules over HTTP.

Every request needs ``Authorization: Bearer <Settings.api_token>`` (401 otherwise, and
nothing changes). PUT validates exactly like ``crm-pulse rules validate`` and answers 422
with field-level details (field, message, line of the body) when the rule is invalid;
a valid rule is published to the compacted rules topic, which every worker follows.
The body is a rule as JSON or YAML.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streams.api.auth import authorized, require_token_config
from streams.rules.catalog import encode_rule, plan_apply, rule_document
from streams.rules.loader import load_text
from streams.rules.model import Rule
from streams.runtime.container import Runtime
from streams.runtime.rules_topic import publish

log = logging.getLogger(__name__)

APPLY_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class PutDecision:
    """What a valid PUT does: publish ``rule`` (``added``/``changed``) or nothing."""

    action: Literal["added", "changed", "unchanged"]
    rule: Rule


def decide_put(
    rule_id: str, body: str, live: Mapping[str, Rule]
) -> PutDecision | list[dict[str, Any]]:
    """Validate a PUT body for ``rule_id`` (pure); problems as field-level dicts."""
    if not body.strip():
        return [{"field": "(body)", "message": "empty body: send one rule as JSON or YAML"}]
    result = load_text(body, source="request")
    problems = [{"field": p.field, "message": p.message, "line": p.line} for p in result.problems]
    if problems:
        return problems
    if len(result.rules) != 1:
        return [{"field": "(body)", "message": f"expected one rule, got {len(result.rules)}"}]
    rule = result.rules[0].rule
    if rule.id != rule_id:
        return [{"field": "id", "message": f"rule id {rule.id!r} differs from URL id {rule_id!r}"}]
    (item,) = plan_apply([rule], {rule_id: live[rule_id]} if rule_id in live else {})
    if item.action == "unchanged":
        return PutDecision("unchanged", live[rule_id])
    assert item.rule is not None and item.action in ("added", "changed")
    return PutDecision(item.action, item.rule)


def summary(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id, "version": rule.version, "type": rule.type,
        "severity": rule.severity.value, "enabled": rule.enabled,
        "entity": rule.applies_to.entity.value, "description": rule.description,
    }  # fmt: skip


def register(app: Any, pulse: Runtime) -> None:
    """Mount ``/rules``; refuses (raises) without a token unless auth is explicitly off."""
    settings = pulse.settings
    require_token_config(settings)
    if settings.api_auth_disabled:
        log.warning("the rules API runs WITHOUT authentication (api_auth_disabled=true)")
    from faust.web import View

    def live_rules() -> Mapping[str, Rule]:
        feed = pulse.rule_feed
        return {} if feed is None else feed.live_rules()

    async def await_live(rule_id: str, encoded: bytes | None) -> bool:
        """Wait until this worker's rule feed shows the published record."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + APPLY_WAIT_S
        while loop.time() < deadline:
            current = live_rules().get(rule_id)
            if encoded is None and current is None:
                return True
            if current is not None and encoded is not None and encode_rule(current) == encoded:
                return True
            await asyncio.sleep(0.05)
        return False

    class _Guarded(View):
        def denied(self, request: Any) -> Any | None:
            if authorized(
                request.headers.get("Authorization"), settings.api_token,
                disabled=settings.api_auth_disabled,
            ):  # fmt: skip
                return None
            return self.json(
                {"error": "unauthorized"}, status=401,
                headers={"WWW-Authenticate": 'Bearer realm="crm-pulse"'},
            )  # fmt: skip

    @app.page("/rules")
    class RulesView(_Guarded):
        async def get(self, request: Any) -> Any:
            if (refusal := self.denied(request)) is not None:
                return refusal
            rules = [summary(r) for _, r in sorted(live_rules().items())]
            return self.json({"version": pulse.engine.rules.version, "rules": rules})

    @app.page("/rules/{rule_id}")
    class RuleView(_Guarded):
        async def get(self, request: Any, rule_id: str) -> Any:
            if (refusal := self.denied(request)) is not None:
                return refusal
            rule = live_rules().get(rule_id)
            if rule is None:
                return self.json({"error": f"no live rule {rule_id!r}"}, status=404)
            return self.json(rule_document(rule))

        async def put(self, request: Any, rule_id: str) -> Any:
            if (refusal := self.denied(request)) is not None:
                return refusal
            body = (await request.read()).decode("utf-8", errors="replace")
            decision = decide_put(rule_id, body, live_rules())
            if isinstance(decision, list):
                log.warning("PUT /rules/%s refused: %s", rule_id, decision)
                return self.json({"error": "invalid rule", "problems": decision}, status=422)
            answer = {"id": rule_id, "result": decision.action, "version": decision.rule.version}
            if decision.action == "unchanged":
                return self.json(answer)
            encoded = encode_rule(decision.rule)
            await publish(settings, [(rule_id.encode(), encoded)])
            answer["live"] = await await_live(rule_id, encoded)
            log.info("rule %s %s over HTTP (version %d)", rule_id, decision.action,
                     decision.rule.version)  # fmt: skip
            return self.json(answer, status=201 if decision.action == "added" else 200)

        async def delete(self, request: Any, rule_id: str) -> Any:
            if (refusal := self.denied(request)) is not None:
                return refusal
            if rule_id not in live_rules():
                return self.json({"error": f"no live rule {rule_id!r}"}, status=404)
            await publish(settings, [(rule_id.encode(), None)])
            live = await await_live(rule_id, None)
            log.info("rule %s deleted over HTTP", rule_id)
            return self.json({"id": rule_id, "result": "deleted", "live": live})
