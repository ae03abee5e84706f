"""Which operators may receive a ticket by what it needs (issue 18, RTE-2), free of I/O:
the skills a rule requires of its assignee and the language detected from its mail,
against the operators' routing profiles.

- **Skills**: an operator must have every required skill (names compared
  case-insensitively) at least at its minimum level. Nobody matching: the ticket waits.
- **Language**: a ticket with a language goes to an operator who lists it, or who lists
  no languages at all (a profile without languages takes any). Fallback: when no
  operator of the inbox — online or not — lists the language, it does not restrict
  (nobody could ever match, so waiting would be for nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .assignment import OperatorState, Waiting

Skills = tuple[tuple[str, int], ...]  # (name, minimum level)


def skill_levels(skills: Iterable[tuple[str, int]]) -> dict[str, int]:
    """An operator's skills by folded name (the highest level of a name given twice)."""
    out: dict[str, int] = {}
    for name, level in skills:
        key = name.casefold()
        out[key] = max(level, out.get(key, 0))
    return out


def has_skills(required: Skills, levels: Mapping[str, int]) -> bool:
    return all(levels.get(name.casefold(), 0) >= level for name, level in required)


def speaks(language: str, languages: frozenset[str], known: frozenset[str]) -> bool:
    """Whether an operator with `languages` may take a ticket in `language`; `known`: the
    languages any operator of the ticket's inbox lists."""
    if not language or not languages or language not in known:
        return True
    return language in languages


class Fits:
    """The operators of a ticket's groups who have what it needs (`assign_match`):
    worked out once per group and need while a plan is made. `operators`: everyone the
    plan knows, online or not (the languages an inbox's operators list)."""

    def __init__(self, operators: Iterable[OperatorState]) -> None:
        self._known: dict[str, set[str]] = {}
        for op in operators:
            for inbox in op.inboxes:
                self._known.setdefault(inbox, set()).update(op.languages)
        self._cache: dict[tuple[int, str, tuple[tuple[str, int], ...]], list[OperatorState]] = {}

    def of(self, ticket: Waiting, groups: list[list[OperatorState]]) -> list[list[OperatorState]]:
        if not ticket.language and not ticket.skills:
            return groups
        known = frozenset(self._known.get(ticket.inbox_id, ()))
        out: list[list[OperatorState]] = []
        for group in groups:
            key = (id(group), ticket.language if ticket.language in known else "", ticket.skills)
            if key not in self._cache:
                self._cache[key] = [
                    op
                    for op in group
                    if has_skills(ticket.skills, op.skills)
                    and speaks(ticket.language, op.languages, known)
                ]
            out.append(self._cache[key])
        return out
