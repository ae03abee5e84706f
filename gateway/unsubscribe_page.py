"""The public unsubscribe page (issue 20, OUT-6) as HTML, in the mail's language (ja, en):
the question with one button (a GET never unsubscribes — mail scanners follow links),
the confirmation, and the refusal pages. Pure functions: every value is escaped here."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from .survey_page import CSP, language_of

__all__ = ["CSP", "done_page", "language_of", "question_page", "refusal_page"]

_T = {
    "ja": {
        "title": "配信停止",
        "ask": "{address} へのキャンペーンメールの配信を停止しますか？",
        "button": "配信を停止する",
        "done": "配信を停止しました。今後 {address} にキャンペーンメールはお送りしません。",
        "already": "{address} はすでに配信停止されています。",
        "note": "お問い合わせへの返信など、お客様ご自身のご用件のメールは引き続きお届けします。",
        "invalid": "この配信停止のリンクは無効です。",
        "bad_request": "このリクエストは配信停止として受け付けられません。",
        "busy": "アクセスが集中しています。しばらくしてからもう一度お試しください。",
        "down": "ただいま受け付けできません。しばらくしてからもう一度お試しください。",
    },
    "en": {
        "title": "Unsubscribe",
        "ask": "Stop campaign mails to {address}?",
        "button": "Unsubscribe",
        "done": "You are unsubscribed: {address} will get no more campaign mails.",
        "already": "{address} is already unsubscribed.",
        "note": "Mail about your own requests, such as replies to your inquiries, still "
        "reaches you.",
        "invalid": "This unsubscribe link is not valid.",
        "bad_request": "This request is not a one-click unsubscribe "
        "(send List-Unsubscribe=One-Click as a form).",
        "busy": "Too many requests: please try again in a minute.",
        "down": "We cannot take your request right now: please try again later.",
    },
}
_STYLE = (
    "body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "button{font-size:1rem;padding:.5rem 1rem;border-radius:.4rem;border:1px solid #888;"
    "background:#f4f4f4;cursor:pointer}.note{color:#555;font-size:.9rem}"
)


def _lang(lang: str) -> str:
    return lang if lang in _T else "en"


def _page(lang: str, body: str) -> str:
    t = _T[lang]
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(t['title'])}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(t['title'])}</h1>{body}</body></html>"
    )


def question_page(token: str, language: str, address: str, unsubscribed: bool) -> str:
    """The question and its one button (the form posts RFC 8058's own field), or — when
    the address is on the list already — that it is."""
    lang = _lang(language)
    t = _T[lang]
    note = f'<p class="note">{escape(t["note"])}</p>'
    if unsubscribed:
        return _page(
            lang, f'<p role="status">{escape(t["already"].format(address=address))}</p>{note}'
        )
    action = f"/unsubscribe/{quote(token, safe='')}"
    return _page(
        lang,
        f"<p>{escape(t['ask'].format(address=address))}</p>"
        f'<form method="post" action="{escape(action)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{escape(t["button"])}</button></form>{note}',
    )


def done_page(language: str, address: str) -> str:
    lang = _lang(language)
    t = _T[lang]
    return _page(
        lang,
        f'<p role="status">{escape(t["done"].format(address=address))}</p>'
        f'<p class="note">{escape(t["note"])}</p>',
    )


def refusal_page(lang: str, why: str) -> str:
    lang = _lang(lang)
    return _page(lang, f'<p role="alert">{escape(_T[lang][why])}</p>')
