"""Block rules match as documented: exact address, domain with subdomains, globs."""

from __future__ import annotations

import pytest

from services.ingestion.blocking import Rule, matching, normalise
from services.runtime.errors import InvalidArgument


def test_rules_match_address_domain_and_pattern() -> None:
    rules = [
        Rule("address", "bad@x.com"),
        Rule("domain", "spam.example"),
        Rule("pattern", "noreply-*@shop.example"),
    ]
    assert matching(rules, ["Bad@X.com"]) == rules[0]
    assert matching(rules, ["a@mx.spam.example"]) == rules[1]
    assert matching(rules, ["a@notspam.example"]) is None  # not a subdomain
    assert matching(rules, ["noreply-7@shop.example"]) == rules[2]
    assert matching(rules, ["sales@shop.example", ""]) is None


def test_rules_are_normalised_or_refused() -> None:
    assert normalise("domain", "@Spam.Example") == "spam.example"
    with pytest.raises(InvalidArgument):
        normalise("pattern", "plain@x.com")
    with pytest.raises(InvalidArgument):
        normalise("address", "a@b.com\r\nBcc: c@d")
