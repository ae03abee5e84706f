"""Reading a rule an administrator saves (plain JSON values, as the API carries them) into
the model, refusing anything unknown or unusable with an error naming the field. Nothing
is stored unless the whole rule passes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

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
    # issue 18: the assignee must have this skill, at least at `level` (1–5, default 1)
    "require_skill": "skill",
}
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


def _action(raw: Any, path: str) -> Action:
    if not isinstance(raw, Mapping):
        raise _fail("an action: {type, value}", path)
    unknown = set(raw) - {"type", "value", "level"}
    if unknown:
        raise _fail("unknown key", f"{path}.{sorted(unknown)[0]}")
    kind = raw.get("type")
    if kind not in ACTION_VALUES:
        raise _fail(f"unknown action {kind!r}", f"{path}.type")
    want = ACTION_VALUES[str(kind)]
    value = raw.get("value", "")
    at = f"{path}.value"
    if want == "skill":
        return _skill(raw, path)
    if "level" in raw:
        raise _fail("only require_skill takes a level", f"{path}.level")
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
    return Action("require_skill", name, level)


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
    return RuleDef(
        name=name,
        inbox_id=inbox_id,
        enabled=enabled,
        triggers=tuple(dict.fromkeys(str(t) for t in triggers)),
        conditions=conditions,
        actions=parsed,
        once_per_ticket=once,
        business_hours=business_hours,
    )


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
    }
