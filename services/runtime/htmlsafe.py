"""What every HTML sanitiser of the platform shares (ingestion's for mail received,
composition's for mail written): a `style` attribute that can load nothing and run nothing,
and a URL read as a browser reads it. Pure functions, used as nh3 attribute filters. Also
the plain text of an operator's HTML (composition's text alternative, outbound's channel
replies)."""

from __future__ import annotations

import re

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

_URL_JUNK = re.compile(r"[\x00-\x20\x7f]+")
_CSS_FUNC = re.compile(r"([a-z-]+)\s*\(", re.I)
_CSS_OK_FUNCS = {"rgb", "rgba", "hsl", "hsla"}
_CSS_BAD = re.compile(r"\\|/\*|javascript|behavior|binding|expression|@import|&#", re.I)


def browser_url(value: str) -> str:
    """A URL as a browser reads it: no control characters or spaces, `\\` as `/`."""
    return _URL_JUNK.sub("", value).replace("\\", "/")


def safe_style(value: str) -> str | None:
    """The declarations of a `style` value that hold no function other than
    rgb()/rgba()/hsl()/hsla() (so no url(), expression(), image-set()), no backslash escape,
    comment, "javascript", "behavior" or "binding"; None when none is left. (nh3 filters
    the property names.)"""
    kept = []
    for decl in value.split(";"):
        if not decl.strip() or _CSS_BAD.search(decl):
            continue
        if any(f.lower() not in _CSS_OK_FUNCS for f in _CSS_FUNC.findall(decl)):
            continue
        kept.append(decl.strip())
    return "; ".join(kept) or None


_TEXT_CONFIG = ParserConfig(display_links=True, display_anchors=False, display_images=True)


def html_text(html: str) -> str:
    """HTML as plain text: inscriptis' rendering (keeps list bullets and numbers, links as
    `[text](url)`, tables laid out), lines without trailing spaces."""
    if not html.strip():
        return ""
    lines = get_text(html, _TEXT_CONFIG).splitlines()
    return "\n".join(line.rstrip() for line in lines).strip("\n")
