"""An operator's HTML (CMP-5): what a draft's `body_html` may hold, the images it shows, and
the plain-text alternative generated from it. Pure functions, no I/O.

What the sanitiser keeps (nh3, run at every save and again when the mail is built):

- ammonia's default tags plus `span`, `div`, `font`, `center`, `hr`, `u`, `s`: what the
  editor produces (paragraphs, bold, italics, lists, links, quotes, colours) and what
  HTML templates and signatures use; scripts, styles, frames, forms and SVG are dropped
  with their content; no event handler survives (no attribute is kept unless listed);
- `style` only with typography properties (colour, background colour, font, alignment,
  decoration, indentation) and no declaration holding a function other than
  rgb()/rgba()/hsl()/hsla(), a backslash, a comment or "expression": a style can load
  nothing and run nothing;
- links: http, https, mailto, tel (rel="noopener noreferrer nofollow");
- images: `cid:` sources only — an inline part of the draft. Remote (http/https) and
  `data:` images are removed: a remote image tells its host when and where the customer
  reads the mail, and many mail programs block it; the editor uploads pasted or dropped
  images as inline attachments instead.

The text alternative is inscriptis' rendering (Apache-2.0, keeps list bullets and
numbers, links as `[text](url)`, tables laid out), used when the operator wrote no text.
"""

from __future__ import annotations

import html as html_lib
import re

import nh3

from services.runtime.htmlsafe import browser_url, html_text, safe_style

from .records import Revision

TAGS = set(nh3.ALLOWED_TAGS) | {"span", "div", "font", "center", "hr", "u", "s"}
_CLEAN_CONTENT = {
    "script", "style", "head", "title", "iframe", "frame", "frameset", "object", "embed",
    "applet", "noscript", "template", "svg", "math", "select", "textarea", "button",
}  # fmt: skip
_ATTRS = {
    "*": {"style", "align", "dir", "lang", "title"},
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start", "type"},
    "td": {"colspan", "rowspan", "width", "valign", "align"},
    "th": {"colspan", "rowspan", "width", "valign", "align"},
    "table": {"width", "border", "cellpadding", "cellspacing"},
    "font": {"color", "size", "face"},
}
STYLE_PROPERTIES = {
    "color", "background-color", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "line-height", "margin-left",
    "padding-left", "border-left", "vertical-align", "width", "height",
}  # fmt: skip
_NO_SRC_IMG = re.compile(r"<img\b(?![^>]*\ssrc=)[^>]*>", re.I)
_CID_SRC = re.compile(r'<img\b[^>]*\ssrc="cid:([^"]*)"', re.I)


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "style":
        return safe_style(value)
    if tag == "img" and attr == "src":
        url = browser_url(value)
        return url if url.lower().startswith("cid:") and len(url) > 4 else None
    if attr == "href":
        url = browser_url(value)
        return url if url.lower().startswith(("http:", "https:", "mailto:", "tel:")) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=TAGS,
    clean_content_tags=_CLEAN_CONTENT,
    attributes=_ATTRS,
    attribute_filter=_attribute_filter,
    strip_comments=True,
    link_rel="noopener noreferrer nofollow",
    url_schemes={"http", "https", "mailto", "tel", "cid"},
    filter_style_properties=STYLE_PROPERTIES,
)


def sanitize(html: str) -> str:
    """The HTML an operator may send: see the module's docstring. Idempotent."""
    if not html.strip():
        return ""
    return _NO_SRC_IMG.sub("", _CLEANER.clean(html)).strip()


def cids(html: str) -> list[str]:
    """The Content-IDs the (sanitised) HTML shows as `cid:` images, in order, unique."""
    return list(dict.fromkeys(m.group(1) for m in _CID_SRC.finditer(html)))


def has_content(html: str) -> bool:
    """Whether the HTML shows anything (text or an image), not just empty paragraphs."""
    return bool(cids(html)) or bool(to_text(html).strip())


def to_text(html: str) -> str:
    """The plain-text alternative of an operator's HTML."""
    return html_text(html)


# -- the mail's two bodies ---------------------------------------------------------------


def compose_text(rev: Revision) -> str:
    """The text/plain part: what was written (or, when only HTML was written, its text
    rendering), the signature, the quote if kept."""
    body = rev.body_text if rev.body_text.strip() else to_text(sanitize(rev.body_html))
    parts = [body.rstrip()]
    if rev.signature_text.strip():
        parts.append(rev.signature_text.rstrip())
    if rev.include_quote and rev.quote_text:
        parts.append(rev.quote_text)
    return "\n\n".join(p for p in parts if p) + "\n"


def channel_text(rev: Revision) -> str:
    """A reply to a channel conversation (chat, API, LINE — issue 21): only what was
    written, as plain text (HTML reduced to text); no signature, no quote — it becomes a
    message in a conversation, whose author the channel names."""
    body = rev.body_text if rev.body_text.strip() else to_text(sanitize(rev.body_html))
    return body.strip() + "\n"


def compose_html(rev: Revision, *, plain_text_only: bool = False) -> str:
    """The text/html part, or "" for a plain-text mail (no HTML written, or an inbox that
    sends plain text only)."""
    if plain_text_only or not rev.body_html.strip():
        return ""
    out = [sanitize(rev.body_html)]
    if rev.signature_html.strip():
        out.append('<div class="sb-signature">' + sanitize(rev.signature_html) + "</div>")
    elif rev.signature_text.strip():
        out.append(
            '<div class="sb-signature">'
            + html_lib.escape(rev.signature_text).replace("\n", "<br>")
            + "</div>"
        )
    if rev.include_quote and rev.quote_text:
        out.append(
            '<blockquote class="sb-quote">'
            + html_lib.escape(rev.quote_text).replace("\n", "<br>")
            + "</blockquote>"
        )
    return "<html><body>" + "\n".join(out) + "</body></html>"
