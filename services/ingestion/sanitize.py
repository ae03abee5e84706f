"""HTML bodies: sanitising with nh3 for display to operators, and a plain-text rendering.

Pure functions, no I/O. What the sanitiser keeps:

- ammonia's default tag set plus `font`; no script, style, head, title, iframe, object,
  embed, applet, form, input, button, select, textarea, svg, math, base, link, meta (these
  are dropped; the ones that carry code or hidden text are dropped with their content);
- no event handlers (no attribute is allowed unless listed), no `class`/`id`;
- `style` attributes filtered to a list of layout/typography properties, and any declaration
  holding a function other than rgb()/rgba()/hsl()/hsla() (so no url(), expression(),
  image-set()), a backslash escape, a comment, "javascript", "behavior" or "binding" is
  dropped: a style cannot load anything or run anything;
- links: http, https, mailto, tel only, rel="noopener noreferrer", target="_blank";
- images: `cid:` kept (and reported so the caller can map them to parts), `data:image/*`
  kept (not SVG); http(s) and protocol-relative sources are blocked: the URL moves to
  `data-sb-blocked-src` and `src` is removed, until an operator allows remote images.

Time is bounded: at most SANITIZE_SOURCE_CHARS characters are sanitised, and HTML on which
html5ever's time would grow quadratically (thousands of elements left open, thousands of
nodes misplaced inside tables; see `too_complex`) is shown as escaped text instead.

Intake may leave the sanitising of HTML for when it is first shown (`can_wait`).
"""

from __future__ import annotations

import html as html_lib
import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote

import nh3

from services.runtime.htmlsafe import browser_url, safe_style

BLOCKED_ATTR = "data-sb-blocked-src"
TEXT_SOURCE_CHARS = 500_000  # HTML characters rendered by html_to_text (it is pure Python)
_MARK = "sb-blocked:"

_TAGS = set(nh3.ALLOWED_TAGS) | {"font"}
_CLEAN_CONTENT = {
    "script",
    "style",
    "head",
    "title",
    "iframe",
    "frame",
    "frameset",
    "noframes",
    "object",
    "embed",
    "applet",
    "noscript",
    "noembed",
    "template",
    "svg",
    "math",
    "select",
    "textarea",
    "button",
    "xmp",
    "plaintext",
}
_GENERIC_ATTRS = {"style", "title", "lang", "dir", "align", "valign", "width", "height"}
_ATTRS: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRS["*"] = set(_GENERIC_ATTRS)
_ATTRS["a"] = {"href", "hreflang", "name"}  # `target` is set, never taken from the mail
_ATTRS["img"] = {"src", "alt", "width", "height", "align", "border", "hspace", "vspace"}
_ATTRS["font"] = {"color", "face", "size"}
for _tag in ("table", "td", "th", "tr", "tbody", "thead", "tfoot"):
    _ATTRS.setdefault(_tag, set()).update(
        {"bgcolor", "border", "cellpadding", "cellspacing", "colspan", "rowspan", "nowrap"}
    )
_STYLE_PROPERTIES = {
    "color",
    "background",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "white-space",
    "word-break",
    "word-wrap",
    "overflow-wrap",
    "vertical-align",
    "direction",
    "display",
    "float",
    "clear",
    "width",
    "height",
    "max-width",
    "min-width",
    "max-height",
    "min-height",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "list-style-type",
    "table-layout",
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data", _MARK.rstrip(":")}
_url = browser_url
_style = safe_style


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "style":
        return _style(value)
    if tag == "img" and attr == "src":
        url = _url(value)
        low = url.lower()
        if low.startswith("cid:"):
            return url
        if low.startswith("data:image/") and not low.startswith("data:image/svg"):
            return url
        if low.startswith(("http:", "https:", "//")):
            full = url if not url.startswith("//") else "https:" + url
            return _MARK + full
        return None
    if attr == "href":
        url = _url(value)
        if url.lower().startswith(("http:", "https:", "mailto:", "tel:")):
            return url
        if url.startswith("//"):
            return "https:" + url
        return None
    if attr in ("src", "cite", "background", "action", "longdesc", "usemap"):
        return None
    return value


def _relative(url: str) -> str | None:
    return url if url.startswith(_MARK) else None


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_CLEAN_CONTENT,
    attributes=_ATTRS,
    attribute_filter=_attribute_filter,
    strip_comments=True,
    link_rel="noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_schemes=_URL_SCHEMES,
    filter_style_properties=_STYLE_PROPERTIES,
    url_relative=_relative,
)

_IMG = re.compile(r"<img\b[^>]*>")
_MARKED_SRC = re.compile(r'\ssrc="' + re.escape(_MARK) + r'([^"]*)"')
_CID_SRC = re.compile(r'\ssrc="cid:([^"]*)"', re.I)


@dataclass(frozen=True)
class SanitizedHtml:
    html: str
    remote_images: int
    cids: list[str]  # Content-IDs referenced by cid: images, in order, unique
    too_complex: str | None = None  # set when the HTML was too complex and became text


# html5ever (under nh3) has inputs on which its time grows with the square of their size:
# - elements left open: 40,000 nested <div> take seconds, 300,000 minutes; 250,000
#   "<i>x</b>" (the </b> closes nothing, every <i> stays open) minutes;
# - content misplaced in a <table> (outside its cells) is "foster parented": inserted before
#   the table, which costs the number of siblings already there: 60,000 "x<br>" straight
#   inside one <table> take 2 s, 120,000 "<table>x</table>" 4 s.
# Real mail leaves at most a few hundred elements open and fosters a few dozen nodes; beyond
# the caps below the body is shown as its text rendering instead, and at most
# SANITIZE_SOURCE_CHARS characters are sanitised at all.
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]{0,30})")
_SELF_CLOSING = {
    # void elements
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "keygen", "basefont", "bgsound", "frame", "image",
    # closed implicitly by their next sibling or parent's end
    "p", "li", "dt", "dd", "td", "th", "tr", "tbody", "thead", "tfoot", "colgroup",
    "caption", "option", "optgroup", "rb", "rt", "rtc", "rp",
}  # fmt: skip
_TABLE_PARTS = {
    "table", "tr", "td", "th", "tbody", "thead", "tfoot", "caption", "col", "colgroup",
    "script", "style", "template", "form", "input",
}  # fmt: skip
MAX_OPEN_ELEMENTS = 1000
MAX_FOSTERED = 2000
SANITIZE_SOURCE_CHARS = 1_000_000


def _open_depth(source: str) -> int:
    """The most elements left open at once (the table-free part of html_complexity)."""
    counts: dict[str, int] = {}
    depth = deepest = 0
    for slash, name in _TAG.findall(source):
        name = name.lower()
        if name in _SELF_CLOSING:
            continue
        if slash:
            if counts.get(name):
                counts[name] -= 1
                depth -= 1
        else:
            counts[name] = counts.get(name, 0) + 1
            depth += 1
            if depth > deepest:
                deepest = depth
    return deepest


def html_complexity(source: str) -> tuple[int, int]:
    """(most elements left open at once, nodes misplaced inside tables), both estimates:
    an end tag closes only an open element of its own name; void and implicitly closed
    elements are not counted; text or a non-table tag right inside a <table> is misplaced."""
    if "<table" not in source.lower():  # nothing can be fostered: the cheaper scan
        return _open_depth(source), 0
    counts: dict[str, int] = {}
    depth = deepest = fostered = 0
    tables: list[bool] = []  # per open table: are we inside one of its cells?
    previous = 0
    for m in _TAG.finditer(source):
        in_table_body = bool(tables) and not tables[-1]
        if in_table_body and not source[previous : m.start()].isspace() and m.start() > previous:
            fostered += 1
        previous = source.find(">", m.end())
        previous = len(source) if previous < 0 else previous + 1
        name = m.group(2).lower()
        closing = bool(m.group(1))
        if name == "table":
            if closing:
                if tables:
                    tables.pop()
            else:
                if in_table_body:
                    fostered += 1
                tables.append(False)
        elif name in ("td", "th", "caption") and tables:
            tables[-1] = not closing
        elif in_table_body and not closing and name not in _TABLE_PARTS:
            fostered += 1
        if name in _SELF_CLOSING:
            continue
        if closing:
            if counts.get(name):
                counts[name] -= 1
                depth -= 1
        else:
            counts[name] = counts.get(name, 0) + 1
            depth += 1
            deepest = max(deepest, depth)
    return deepest, fostered


_START_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9:-]{0,30})")


def _most_open(source: str) -> int:
    """An upper bound of `_open_depth`: the start tags that open an element (counted by
    name in C, so far cheaper than the scan)."""
    counts = Counter(_START_TAG.findall(source))
    return sum(n for name, n in counts.items() if name.lower() not in _SELF_CLOSING)


def too_complex(source: str) -> str | None:
    """Why this HTML would take too long to sanitise, or None."""
    # Each tag opens at most one element and fosters at most two nodes (itself and the
    # text before it): with this few tags neither cap can be passed, so no scan is needed.
    if source.count("<") <= min(MAX_OPEN_ELEMENTS, MAX_FOSTERED // 2):
        return None
    # Without a table nothing is fostered, and no more elements can be open at once than
    # start tags opened (at most the "<" not followed by "/").
    if "<table" not in source.lower() and (
        source.count("<") - source.count("</") <= MAX_OPEN_ELEMENTS
        or _most_open(source) <= MAX_OPEN_ELEMENTS
    ):
        return None
    deepest, fostered = html_complexity(source)
    if deepest > MAX_OPEN_ELEMENTS:
        return f"{deepest} elements left open at once"
    if fostered > MAX_FOSTERED:
        return f"{fostered} pieces of content misplaced inside tables"
    return None


def sanitize_html(source: str) -> SanitizedHtml:
    """Sanitise an HTML body (see the module docstring). Never raises on odd HTML.

    At most SANITIZE_SOURCE_CHARS characters are read; HTML too complex to sanitise in
    bounded time (see `too_complex`) is replaced by its escaped text rendering."""
    source = source[:SANITIZE_SOURCE_CHARS]
    problem = too_complex(source)
    if problem:
        text = html_lib.escape(html_to_text(source[:TEXT_SOURCE_CHARS]))
        return SanitizedHtml(f"<p>{text.replace(chr(10), '<br>')}</p>", 0, [], problem)
    cleaned = _CLEANER.clean(source)
    remote = 0
    cids: dict[str, None] = {}

    def fix_img(m: re.Match[str]) -> str:
        nonlocal remote
        tag = m.group(0)
        if _MARK in tag:
            remote += 1
            tag = _MARKED_SRC.sub(lambda s: f' {BLOCKED_ATTR}="{s.group(1)}"', tag)
        for c in _CID_SRC.findall(tag):
            cids[unquote(html_lib.unescape(c))] = None
        return tag

    cleaned = _IMG.sub(fix_img, cleaned)
    cleaned = cleaned.replace(_MARK, "")  # a mark outside <img> cannot happen; belt and braces
    return SanitizedHtml(cleaned, remote, list(cids))


# Sanitising can wait until the HTML is first shown when nothing else the parse records
# depends on it: HTML with no image (no remote image to count, no cid: part to map or to
# miss) that is not too complex (which is recorded as a problem). html5ever reads an
# <image> start tag as <img>, so "<im" is looked for, in any case.
_IMAGE_TAG = re.compile(r"<im", re.I)


def can_wait(source: str) -> bool:
    """True when sanitising `source` can be left until it is first shown without changing
    anything else a parse records (see above)."""
    source = source[:SANITIZE_SOURCE_CHARS]
    return _IMAGE_TAG.search(source) is None and too_complex(source) is None


# --- HTML → text --------------------------------------------------------------------------

_BLOCK = {
    "p",
    "div",
    "tr",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "address",
    "center",
    "form",
    "fieldset",
    "figure",
    "figcaption",
    "main",
    "body",
}
_SKIP = {"script", "style", "title", "template", "noscript", "xml", "head"}


class _TextRenderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip: list[str] = []
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self.skip:  # an unclosed <head>
            self.skip = [t for t in self.skip if t != "head"]
        if tag in _SKIP:
            self.skip.append(tag)
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCK:
            self.out.append("\n")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            if tag in self.skip:
                while self.skip and self.skip.pop() != tag:
                    pass
        elif tag in _BLOCK or tag == "li":
            self.out.append("\n")
        if tag == "pre" and self.pre:
            self.pre -= 1

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


_BLANKS = re.compile(r"\n{3,}")
_LINE_SPACE = re.compile(r"[ \t\u00a0]+")


def html_to_text(source: str) -> str:
    """A readable plain-text rendering of an HTML body (for `text` and snippets)."""
    renderer = _TextRenderer()
    try:
        renderer.feed(source)
        renderer.close()
    except Exception:  # HTMLParser is lenient; an odd case must not lose the whole body
        pass
    lines = (_LINE_SPACE.sub(" ", line).strip() for line in "".join(renderer.out).split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
