"""The words and the MIME bytes of the scale data set's mails (`make seed-scale`), free of
I/O: Japanese mail as Japanese mail programs write it (ISO-2022-JP in 7 bits, or UTF-8 in
base64, with RFC 2047 encoded words in the headers) and English mail in plain ASCII or
quoted-printable UTF-8. Every choice is drawn from the `random.Random` given, so the same
seed writes the same bytes."""

from __future__ import annotations

import base64
import quopri
import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime


@dataclass(frozen=True)
class Topic:
    label: str
    category: str
    ja_subjects: tuple[str, ...]
    en_subjects: tuple[str, ...]
    ja_lines: tuple[str, ...]
    en_lines: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "配送",
        "shipping",
        ("商品がまだ届きません", "配送状況の確認", "お届け日の変更について"),
        ("Where is my order?", "Delivery status", "Change of delivery date"),
        (
            "注文した商品がまだ届いておりません。",
            "配送状況を教えていただけますか。",
            "お届け日を変更したいです。",
        ),
        (
            "My order has not arrived yet.",
            "Could you tell me the delivery status?",
            "I would like to change the delivery date.",
        ),
    ),
    Topic(
        "返品",
        "returns",
        ("返品したい", "返品・交換のお願い", "サイズ交換について"),
        ("Return request", "Exchange an item", "Wrong size received"),
        (
            "サイズが合わないため返品を希望します。",
            "交換の手続きを教えてください。",
            "届いた商品が破損していました。",
        ),
        (
            "The size does not fit, I want to return it.",
            "How do I exchange the item?",
            "The item arrived damaged.",
        ),
    ),
    Topic(
        "請求",
        "billing",
        ("請求書の送付について", "請求金額が違います", "支払い方法の変更"),
        ("Invoice request", "Wrong amount charged", "Change of payment method"),
        (
            "請求書を再発行していただけますか。",
            "請求金額が注文時と異なっています。",
            "クレジットカードから銀行振込に変更したいです。",
        ),
        (
            "Could you send me the invoice again?",
            "I was charged the wrong amount.",
            "I want to pay by bank transfer instead of card.",
        ),
    ),
    Topic(
        "領収書",
        "billing",
        ("領収書の発行について", "領収書の宛名変更"),
        ("Receipt request", "Name on the receipt"),
        ("領収書の発行をお願いいたします。", "領収書の宛名を会社名にしてください。"),
        ("Please issue a receipt.", "Please put our company name on the receipt."),
    ),
    Topic(
        "ログイン",
        "account",
        ("ログインできません", "パスワードを忘れました"),
        ("Cannot log in", "Forgot my password"),
        ("ログインしようとするとエラーが表示されます。", "パスワード再設定のメールが届きません。"),
        ("I get an error when I try to log in.", "The password reset mail never arrives."),
    ),
    Topic(
        "解約",
        "account",
        ("解約の手続きについて", "退会したい"),
        ("Cancel my subscription", "Close my account"),
        ("来月で解約したいと考えております。", "退会の方法を教えてください。"),
        ("I would like to cancel next month.", "How do I close my account?"),
    ),
    Topic(
        "不具合",
        "product",
        ("アプリが起動しません", "動作がおかしい"),
        ("The app does not start", "Something is broken"),
        ("アップデート後にアプリが起動しなくなりました。", "画面が真っ白になります。"),
        ("Since the update the app does not start.", "The screen stays blank."),
    ),
    Topic(
        "見積",
        "sales",
        ("見積もりのお願い", "法人契約について"),
        ("Request for a quote", "Corporate plan"),
        ("100ライセンスの見積もりをお願いします。", "法人向けの料金を教えてください。"),
        ("Please send a quote for 100 licences.", "What does the corporate plan cost?"),
    ),
)
# Sentences a few mails carry, so a search can look for a word that is rare.
RARE_JA = "在庫切れ通知の設定方法を教えてください。"
RARE_EN = "How do I set up the out-of-stock alert?"
RARE_EVERY = 997  # about one customer mail in this many

JA_SURNAMES = (
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
    "木村",
    "林",
    "斎藤",
    "清水",
)
JA_GIVEN = ("太郎", "花子", "一郎", "美咲", "健太", "陽子", "翔太", "さくら", "大輔", "由美")
EN_SURNAMES = (
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Miller",
    "Wilson",
    "Moore",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
)
EN_GIVEN = ("James", "Mary", "John", "Linda", "David", "Susan", "Paul", "Karen", "Mark", "Emma")


def customer_name(rng: random.Random, ja: bool) -> str:
    if ja:
        return f"{rng.choice(JA_SURNAMES)} {rng.choice(JA_GIVEN)}"
    return f"{rng.choice(EN_GIVEN)} {rng.choice(EN_SURNAMES)}"


def customer_text(rng: random.Random, topic: Topic, ja: bool, name: str, order: int) -> str:
    """A customer's mail body: greeting, the topic's sentences, an order number, a close."""
    lines = list(topic.ja_lines if ja else topic.en_lines)
    rng.shuffle(lines)
    said = lines[: rng.randint(1, len(lines))]
    if rng.randrange(RARE_EVERY) == 0:
        said.append(RARE_JA if ja else RARE_EN)
    if ja:
        return (
            f"ご担当者様\n\nお世話になっております。{name}です。\n"
            + "\n".join(said)
            + f"\n注文番号: A{order:07d}\n\nよろしくお願いいたします。\n{name}\n"
        )
    return "Hello,\n\n" + "\n".join(said) + f"\nOrder number: A{order:07d}\n\nThank you,\n{name}\n"


def reply_text(ja: bool, customer: str, operator: str, quoted: str) -> str:
    quote = "\n".join("> " + line for line in quoted.splitlines()[:6])
    if ja:
        return (
            f"{customer} 様\n\nお問い合わせいただきありがとうございます。\n"
            f"担当の{operator}でございます。\n確認のうえ、改めてご連絡いたします。\n\n"
            f"{quote}\n"
        )
    return (
        f"Dear {customer},\n\nThank you for contacting us. This is {operator}.\n"
        f"We are looking into it and will get back to you shortly.\n\n{quote}\n"
    )


@dataclass(frozen=True)
class Envelope:
    from_name: str
    from_address: str
    to_name: str
    to_address: str
    subject: str
    date: datetime
    message_id: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()


def _word(text: str, charset: str) -> str:
    """An RFC 2047 encoded word (B), or the text itself when it is ASCII."""
    if text.isascii():
        return text
    if charset != "iso-2022-jp":
        charset = "utf-8"
    raw = text.encode(charset)
    return f"=?{charset.upper()}?B?{base64.b64encode(raw).decode()}?="


def _address(name: str, address: str, charset: str) -> str:
    if not name:
        return address
    shown = _word(name, charset) if not name.isascii() else f'"{name}"'
    return f"{shown} <{address}>"


def mime(env: Envelope, body: str, charset: str) -> bytes:
    """The whole mail: `charset` "iso-2022-jp" (7bit), "utf-8" (base64 for Japanese,
    quoted-printable for English) or "us-ascii" (7bit)."""
    headers = [
        f"From: {_address(env.from_name, env.from_address, charset)}",
        f"To: {_address(env.to_name, env.to_address, charset)}",
        f"Subject: {_word(env.subject, charset)}",
        f"Date: {format_datetime(env.date)}",
        f"Message-ID: <{env.message_id}>",
    ]
    if env.in_reply_to:
        headers.append(f"In-Reply-To: <{env.in_reply_to}>")
    if env.references:
        headers.append("References: " + " ".join(f"<{r}>" for r in env.references))
    headers.append("MIME-Version: 1.0")
    text = body.replace("\n", "\r\n")
    if charset == "iso-2022-jp":
        payload = text.encode("iso-2022-jp")
        cte = "7bit"
    elif charset == "utf-8" and not body.isascii():
        if any(ord(c) > 0x2FFF for c in body):
            payload = base64.encodebytes(text.encode()).replace(b"\n", b"\r\n")
            cte = "base64"
        else:
            payload = quopri.encodestring(text.encode()).replace(b"\n", b"\r\n")
            cte = "quoted-printable"
    else:
        charset, payload, cte = "us-ascii", text.encode("ascii", "replace"), "7bit"
    headers.append(f'Content-Type: text/plain; charset="{charset}"')
    headers.append(f"Content-Transfer-Encoding: {cte}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + payload
