"""The public survey page (issue 20, OUT-5) as HTML, in the mail's language (ja, en):
the rating recorded, the scale to change it, the optional comment; and the refusal pages
(a tampered or expired link, too many requests, a service down). Pure functions: every
value is escaped here."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from services.outbound.survey_domain import SCALE, mark

# its own policy: inline style only, the form posts to this origin
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_T = {
    "ja": {
        "title": "アンケート",
        "recorded": "ご回答ありがとうございます。評価 {n} を記録しました。",
        "choose": "評価を選んでください。",
        "change": "評価を変える場合は、もう一度お選びください。",
        "comment": "ご意見（任意）",
        "send": "送信",
        "saved": "コメントを受け付けました。ありがとうございました。",
        "saved_all": "ご回答を受け付けました。ありがとうございました。",
        "more": "よろしければ、次の質問にもお答えください（任意）。",
        "rate": "{n}（5段階中）",
        "invalid": "このアンケートのリンクは無効です。",
        "expired": "このアンケートのリンクは有効期限が切れています。",
        "busy": "アクセスが集中しています。しばらくしてからもう一度お試しください。",
        "down": "ただいま受け付けできません。しばらくしてからもう一度お試しください。",
    },
    "en": {
        "title": "Survey",
        "recorded": "Thank you — your rating {n} is recorded.",
        "choose": "Please choose a rating.",
        "change": "To change it, choose again.",
        "comment": "Anything to add? (optional)",
        "send": "Send",
        "saved": "Thank you, your comment is saved.",
        "saved_all": "Thank you, your answers are saved.",
        "more": "If you like, answer these too (optional).",
        "rate": "{n} of 5",
        "invalid": "This survey link is not valid.",
        "expired": "This survey link has expired.",
        "busy": "Too many requests: please try again in a minute.",
        "down": "We cannot take your answer right now: please try again later.",
    },
}
_STYLE = (
    "body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "a.r{display:inline-block;margin:.2rem;padding:.4rem .6rem;border:1px solid #aaa;"
    "border-radius:.4rem;text-decoration:none;color:#222}a.r.on{background:#ffe9a8}"
    "textarea{width:100%;min-height:6rem}fieldset{border:1px solid #ccc;border-radius:.4rem;"
    "margin:0 0 1rem}fieldset label{display:inline-block;margin:.2rem .6rem .2rem 0}"
)


def language_of(accept: str) -> str:
    """For a refusal (no survey known): Japanese when the browser prefers it."""
    first = accept.split(",", 1)[0].strip().lower()
    return "ja" if first.startswith("ja") else "en"


def _page(lang: str, body: str) -> str:
    t = _T[lang]
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(t['title'])}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def answer_page(token: str, answer: Any, *, comment_saved: bool = False) -> str:
    lang = answer.language if answer.language in _T else "en"
    t = _T[lang]
    link = f"/survey/{quote(token, safe='')}"
    parts = [f"<h1>{escape(answer.question or t['title'])}</h1>"]
    if answer.ticket_number:
        parts.append(f"<p>{escape(answer.inbox_name)} [#{answer.ticket_number}]</p>")
    if comment_saved:
        saved = t["saved_all"] if answer.questions else t["saved"]
        parts.append(f'<p role="status">{escape(saved)}</p>')
    elif answer.rating:
        parts.append(f'<p role="status">{escape(t["recorded"].format(n=answer.rating))}</p>')
    parts.append(f"<p>{escape(t['change'] if answer.rating else t['choose'])}</p><p>")
    for n in range(1, SCALE + 1):
        on = " on" if n == answer.rating else ""
        parts.append(
            f'<a class="r{on}" href="{escape(link)}?rating={n}" '
            f'aria-label="{n}">{n} {mark(answer.scale_style, n)}</a>'
        )
    parts.append("</p>")
    if answer.rating:  # the additional questions and the comment, posted together
        parts.append(f'<form method="post" action="{escape(link)}">')
        if answer.questions:
            parts.append(f"<p>{escape(t['more'])}</p>")
        parts.extend(_asked(q, n, answer.scale_style, t) for n, q in enumerate(answer.questions))
        parts.append(
            f'<label for="comment">{escape(t["comment"])}</label>'
            f'<textarea id="comment" name="comment" maxlength="2000">'
            f"{escape(answer.comment)}</textarea>"
            f'<p><button type="submit">{escape(t["send"])}</button></p></form>'
        )
    return _page(lang, "".join(parts))


def _asked(q: Any, n: int, style: str, t: dict[str, str]) -> str:
    """An additional question: a group of radios 1–5 named by its text, each labelled."""
    legend = f"q{n}-legend"
    out = [f'<fieldset role="radiogroup" aria-labelledby="{legend}">'
           f'<legend id="{legend}">{escape(q.text)}</legend>']  # fmt: skip
    for k in range(1, SCALE + 1):
        checked = " checked" if k == q.rating else ""
        out.append(
            f'<label><input type="radio" name="q.{escape(q.id)}" value="{k}"{checked} '
            f'aria-label="{escape(t["rate"].format(n=k))}"> {k} {mark(style, k)}</label>'
        )
    out.append("</fieldset>")
    return "".join(out)


def refusal_page(lang: str, why: str) -> str:
    t = _T[lang if lang in _T else "en"]
    return _page(lang, f'<h1>{escape(t["title"])}</h1><p role="alert">{escape(t[why])}</p>')
