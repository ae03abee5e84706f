"""Reading a rule an administrator saves (plain JSON values, as the API carries them) into
the model, refusing anything unknown or unusable with an error naming the field. Nothing
is stored unless the whole rule passes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from services.runtime.errors import InvalidArgument

from . import model, text
from .fields import FIELDS, OPERATORS, Kind
from .model import Action, BusinessHours, Group, Leaf, RuleDef

NAME_LIMIT = 200
VALUE_LIMIT = 1000
ACTIONS_LIMIT = 20
TAG_LIMIT = 50  # a label or category, as tickets keeps them

# action type → what its value must be: None (no value), "id", a tuple of choices, "text"
ACTION_VALUES: dict[str, Any] = {
    "move_to_inbox": "id",
    "set_status": model.SETTABLE_STATUSES,
    "assign": "id",
    "assign_by_strategy": None,
    "add_label": "label",
    "remove_label": "label",
    "set_category": "text",
    "set_priority": model.PRIORITIES,
    "mark_spam": None,
    "move_to_trash": None,
    "require_approval": "optional_label",
    "stop": None,
    "auto_reply": "id",  # a composition template (rules_api checks that it exists)
    "notify": "message",  # with `to`: who
    "webhook": "url",
    # issue 18: the assignee must have this skill, at least at `level` (1–5, default 1)
    "require_skill": "skill",
}
NOTIFY_TO_LIMIT = 20
MESSAGE_LIMIT = 500
URL_LIMIT = 2000
ROLE_LIMIT = 100
SKILL_LIMIT = 64
LEVEL_MAX = 5


def _fail(message: str, field: str) -> InvalidArgument:
    return InvalidArgument(message, field=field)


def _str(value: Any, field: str, *, limit: int = VALUE_LIMIT, required: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail("must be text", field)
    if "\x00" in value:
        raise _fail("must not contain NUL", field)
    if required and not value.strip():
        raise _fail("must not be empty", field)
    if len(value) > limit:
        raise _fail(f"at most {limit} characters", field)
    return value


def _id(value: Any, field: str) -> str:
    raw = _str(value, field)
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise _fail("not an id", field) from None


def _date(value: Any, field: str) -> datetime:
    raw = _str(value, field)
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _fail("not an ISO 8601 date", field) from None
    if at.tzinfo is None:
        raise _fail("needs a time zone offset (e.g. Z or +09:00)", field)
    return at


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _fail("must be a number", field)
    return float(value)


def _value(kind: Kind, operator: str, value: Any, field: str) -> Any:
    if operator == "in":
        if not isinstance(value, list | tuple) or not value:
            raise _fail("a non-empty list of values", field)
        if len(value) > 100:
            raise _fail("at most 100 values", field)
        if kind in (Kind.NUMBER,):
            return tuple(str(_number(v, f"{field}[{i}]")) for i, v in enumerate(value))
        if kind is Kind.ORDERED:
            return tuple(_choice(v, model.PRIORITIES, f"{field}[{i}]") for i, v in enumerate(value))
        return tuple(_str(v, f"{field}[{i}]") for i, v in enumerate(value))
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise _fail("must be true or false", field)
        return value
    if kind is Kind.NUMBER:
        return _number(value, field)
    if kind is Kind.ORDERED:
        return _choice(value, model.PRIORITIES, field)
    if kind is Kind.DATE:
        return _date(value, field)
    if kind is Kind.CALENDAR:
        return _str(value, field, limit=200)
    pattern = _str(value, field, required=operator != "equals")
    if operator == "regex":
        try:
            text.compile_regex(pattern)
        except text.BadPattern as err:
            raise _fail(f"not a usable regular expression (RE2 syntax): {err}", field) from None
    return pattern


def _choice(value: Any, choices: Sequence[str], field: str) -> str:
    if value not in choices:
        raise _fail(f"one of {', '.join(choices)}", field)
    return str(value)


def _leaf(raw: Mapping[str, Any], path: str) -> Leaf:
    unknown = set(raw) - {"field", "operator", "value", "name", "negate"}
    if unknown:
        raise _fail("unknown key", f"{path}.{sorted(unknown)[0]}")
    name = raw.get("field")
    if name not in FIELDS:
        raise _fail(f"unknown field {name!r}", f"{path}.field")
    kind = FIELDS[str(name)]
    operator = raw.get("operator")
    if operator not in OPERATORS[kind]:
        raise _fail(
            f"operator {operator!r} does not apply to {name}; one of " + ", ".join(OPERATORS[kind]),
            f"{path}.operator",
        )
    header = ""
    if name == "header":
        header = _str(raw.get("name", ""), f"{path}.name", limit=200)
        if any(c in header for c in ":\r\n ") or not header.isascii():
            raise _fail("not a header name", f"{path}.name")
    elif name == "contact_field":  # the custom field's key, as contacts keep it
        header = _str(raw.get("name", ""), f"{path}.name", limit=100).strip()
        if any(c in header for c in "\r\n"):
            raise _fail("the custom field's key, on one line", f"{path}.name")
    elif raw.get("name"):
        raise _fail("only a header or contact_field condition has a name", f"{path}.name")
    if "value" not in raw:
        raise _fail("a value is required", f"{path}.value")
    negate = raw.get("negate", False)
    if not isinstance(negate, bool):
        raise _fail("must be true or false", f"{path}.negate")
    value = _value(kind, str(operator), raw["value"], f"{path}.value")
    if name == "language" and operator in ("equals", "in"):
        _language_codes(value, f"{path}.value")
    return Leaf(field=str(name), operator=str(operator), value=value, name=header, negate=negate)


def _language_codes(value: Any, field: str) -> None:
    """A language condition compares ISO 639-1 codes ("ja", "en"; "" is unknown)."""
    for i, code in enumerate(value if isinstance(value, tuple) else (value,)):
        code = str(code)
        if code and not (len(code) == 2 and code.isascii() and code.isalpha()):
            at = f"{field}[{i}]" if isinstance(value, tuple) else field
            raise _fail(f"{code!r} is not an ISO 639-1 code such as ja or en", at)


class _Counter:
    leaves = 0


def _group(raw: Any, path: str, depth: int, counter: _Counter) -> Group:
    if not isinstance(raw, Mapping):
        raise _fail("a group: {match, conditions}", path)
    unknown = set(raw) - {"match", "conditions"}
    if unknown:
        raise _fail("unknown key", f"{path}.{sorted(unknown)[0]}")
    if depth > model.MAX_GROUP_DEPTH:
        raise _fail(f"groups nest at most {model.MAX_GROUP_DEPTH} levels", path)
    match = raw.get("match", "all")
    if match not in ("all", "any"):
        raise _fail("'all' or 'any'", f"{path}.match")
    items = raw.get("conditions", [])
    if not isinstance(items, list | tuple):
        raise _fail("a list", f"{path}.conditions")
    out: list[Leaf | Group] = []
    for i, item in enumerate(items):
        at = f"{path}.conditions[{i}]"
        if isinstance(item, Mapping) and ("match" in item or "conditions" in item):
            out.append(_group(item, at, depth + 1, counter))
        elif isinstance(item, Mapping):
            counter.leaves += 1
            if counter.leaves > model.MAX_LEAVES:
                raise _fail(f"at most {model.MAX_LEAVES} conditions in a rule", "conditions")
            out.append(_leaf(item, at))
        else:
            raise _fail("a condition or a group", at)
    return Group(match="all" if match == "all" else "any", conditions=tuple(out))


def url(value: Any, field: str) -> str:
    """A webhook's address: absolute http(s), a host, no credentials, no fragment. Where
    it may lead (private addresses) is the deliverer's check, at each attempt."""
    raw = _str(value, field, limit=URL_LIMIT).strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in raw):
        raise _fail("must not contain spaces or control characters", field)
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https"):
        raise _fail("an http:// or https:// address", field)
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise _fail("not a usable port", field) from None
    if not host:
        raise _fail("needs a host", field)
    if parts.username is not None or parts.password is not None:
        raise _fail("must not carry a user name or password", field)
    if parts.fragment:
        raise _fail("must not have a #fragment", field)
    return raw


def _recipient(value: Any, field: str) -> str:
    raw = _str(value, field, limit=ROLE_LIMIT + 10).strip()
    if raw == model.INBOX_MEMBERS:
        return raw
    if raw.startswith("operator:"):
        return "operator:" + _id(raw.removeprefix("operator:"), field)
    if raw.startswith("role:") and raw.removeprefix("role:").strip():
        return "role:" + " ".join(raw.removeprefix("role:").split())
    raise _fail("operator:<id>, inbox_members or role:<name>", field)


def _notify_to(raw: Mapping[str, Any], path: str, kind: str) -> tuple[str, ...]:
    to = raw.get("to")
    if kind != model.NOTIFY:
        if to not in (None, []):
            raise _fail("only a notify action has recipients", f"{path}.to")
        return ()
    if not isinstance(to, list | tuple) or not to:
        raise _fail("at least one recipient", f"{path}.to")
    if len(to) > NOTIFY_TO_LIMIT:
        raise _fail(f"at most {NOTIFY_TO_LIMIT} recipients", f"{path}.to")
    found = [_recipient(v, f"{path}.to[{i}]") for i, v in enumerate(to)]
    return tuple(dict.fromkeys(found))


def _action(raw: Any, path: str) -> Action:
    if not isinstance(raw, Mapping):
        raise _fail("an action: {type, value}", path)
    unknown = set(raw) - {"type", "value", "to", "level"}
    if unknown:
        raise _fail("unknown key", f"{path}.{sorted(unknown)[0]}")
    kind = raw.get("type")
    if kind not in ACTION_VALUES:
        raise _fail(f"unknown action {kind!r}", f"{path}.type")
    want = ACTION_VALUES[str(kind)]
    value = raw.get("value", "")
    at = f"{path}.value"
    to = _notify_to(raw, path, str(kind))
    if want == "skill":
        return _skill(raw, path)
    if "level" in raw:
        raise _fail("only require_skill takes a level", f"{path}.level")
    if want == "message":
        return Action(str(kind), _str(value, at, limit=MESSAGE_LIMIT).strip(), to)
    if want == "url":
        return Action(str(kind), url(value, at))
    if want is None:
        if value not in ("", None):
            raise _fail("this action takes no value", at)
        return Action(str(kind))
    if want == "id":
        return Action(str(kind), _id(value, at))
    if isinstance(want, tuple):
        return Action(str(kind), _choice(value, want, at))
    if want == "optional_label":
        label = _str(value or model.DEFAULT_APPROVAL_LABEL, at, limit=TAG_LIMIT)
        return Action(str(kind), label.strip())
    if want == "label":
        return Action(str(kind), " ".join(_str(value, at, limit=TAG_LIMIT).split()))
    return Action(str(kind), " ".join(_str(value, at, limit=TAG_LIMIT, required=False).split()))


def _skill(raw: Mapping[str, Any], path: str) -> Action:
    name = " ".join(_str(raw.get("value", ""), f"{path}.value", limit=SKILL_LIMIT).split())
    level = raw.get("level", 1)
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= LEVEL_MAX:
        raise _fail(f"a whole number 1 to {LEVEL_MAX}", f"{path}.level")
    return Action("require_skill", name, level=level)


def parse(raw: Mapping[str, Any]) -> RuleDef:
    """The rule, or InvalidArgument naming the first field at fault."""
    known = {
        "name",
        "inbox_id",
        "enabled",
        "triggers",
        "conditions",
        "actions",
        "once_per_ticket",
        "business_hours",
        "no_first_reply_minutes",
    }
    unknown = set(raw) - known
    if unknown:
        raise _fail("unknown field", sorted(unknown)[0])
    name = _str(raw.get("name", ""), "name", limit=NAME_LIMIT).strip()
    inbox = raw.get("inbox_id") or ""
    inbox_id = _id(inbox, "inbox_id") if inbox else ""
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail("must be true or false", "enabled")
    triggers = raw.get("triggers", [])
    if not isinstance(triggers, list | tuple) or not triggers:
        raise _fail("at least one trigger", "triggers")
    for i, trig in enumerate(triggers):
        if trig not in model.TRIGGERS:
            raise _fail(f"one of {', '.join(model.TRIGGERS)}", f"triggers[{i}]")
    conditions = _group(raw.get("conditions") or {}, "conditions", 1, _Counter())
    actions = raw.get("actions", [])
    if not isinstance(actions, list | tuple) or not actions:
        raise _fail("at least one action", "actions")
    if len(actions) > ACTIONS_LIMIT:
        raise _fail(f"at most {ACTIONS_LIMIT} actions", "actions")
    parsed = tuple(_action(a, f"actions[{i}]") for i, a in enumerate(actions))
    once = raw.get("once_per_ticket", False)
    if not isinstance(once, bool):
        raise _fail("must be true or false", "once_per_ticket")
    hours = raw.get("business_hours")
    business_hours = None
    if hours:
        if not isinstance(hours, Mapping):
            raise _fail("{calendar_id, when}", "business_hours")
        when = hours.get("when")
        if when not in ("inside", "outside"):
            raise _fail("'inside' or 'outside'", "business_hours.when")
        business_hours = BusinessHours(
            calendar_id=_str(hours.get("calendar_id", ""), "business_hours.calendar_id", limit=200),
            when="inside" if when == "inside" else "outside",
        )
    no_reply = _no_reply_minutes(raw.get("no_first_reply_minutes"), triggers)
    return RuleDef(
        name=name,
        inbox_id=inbox_id,
        enabled=enabled,
        triggers=tuple(dict.fromkeys(str(t) for t in triggers)),
        conditions=conditions,
        actions=parsed,
        once_per_ticket=once,
        business_hours=business_hours,
        no_first_reply_minutes=no_reply,
    )


def _no_reply_minutes(value: Any, triggers: Sequence[Any]) -> int | None:
    """The minutes of a rule with the trigger no_first_reply: required with it, refused
    without it."""
    field = "no_first_reply_minutes"
    if model.NO_FIRST_REPLY not in triggers:
        if value not in (None, 0):
            raise _fail("only with the trigger no_first_reply", field)
        return None
    if value in (None, 0):
        raise _fail("required with the trigger no_first_reply", field)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _fail("must be a whole number of minutes", field)
    if not 1 <= value <= model.MAX_NO_REPLY_MINUTES:
        raise _fail(f"must be 1–{model.MAX_NO_REPLY_MINUTES} minutes", field)
    return int(value)


def _value_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_value_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _group_json(group: Group) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for c in group.conditions:
        if isinstance(c, Group):
            items.append(_group_json(c))
        else:
            leaf: dict[str, Any] = {"field": c.field, "operator": c.operator}
            if c.name:
                leaf["name"] = c.name
            leaf["value"] = _value_json(c.value)
            if c.negate:
                leaf["negate"] = True
            items.append(leaf)
    return {"match": group.match, "conditions": items}


def _action_json(a: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"type": a.type}
    if a.value:
        out["value"] = a.value
    if a.to:
        out["to"] = list(a.to)
    if a.level:
        out["level"] = a.level
    return out


def to_json(rule: RuleDef) -> dict[str, Any]:
    """The rule as plain JSON values, as `parse` reads them (stored, and answered)."""
    return {
        "name": rule.name,
        "inbox_id": rule.inbox_id,
        "enabled": rule.enabled,
        "triggers": list(rule.triggers),
        "conditions": _group_json(rule.conditions),
        "actions": [_action_json(a) for a in rule.actions],
        "once_per_ticket": rule.once_per_ticket,
        "business_hours": (
            {"calendar_id": rule.business_hours.calendar_id, "when": rule.business_hours.when}
            if rule.business_hours
            else None
        ),
        "no_first_reply_minutes": rule.no_first_reply_minutes,
    }


def calendar_refs(rule: RuleDef) -> list[tuple[str, str]]:
    """(the field's path, the calendar id) of every business-hours calendar the rule
    names: its `business_hours` option and its `business_hours` conditions."""
    out: list[tuple[str, str]] = []
    if rule.business_hours is not None:
        out.append(("business_hours.calendar_id", rule.business_hours.calendar_id))

    def walk(group: Group, path: str) -> None:
        for i, c in enumerate(group.conditions):
            at = f"{path}.conditions[{i}]"
            if isinstance(c, Group):
                walk(c, at)
            elif FIELDS[c.field] is Kind.CALENDAR:
                out.append((f"{at}.value", str(c.value)))

    walk(rule.conditions, "conditions")
    return out
