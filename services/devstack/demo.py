"""A few demo mails, sent once through the real SMTP intake."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from .stack import TRUSTED_AUTHSERV_ID

DEMO_MAILS = [
    (
        "Yamada Taro",
        "taro.yamada@example.jp",
        "support@demo.example",
        "ご注文の配送状況について",
        "お世話になっております。\n先週注文した商品がまだ届きません。配送状況を教えていただけますか。\n\n山田太郎",
        "iso-2022-jp",
    ),
    (
        "Alice Customer",
        "alice@example.com",
        "support@demo.example",
        "Cannot log in to my account",
        "Hello,\nsince yesterday I cannot log in. Could you reset my password?\n\nAlice",
        "utf-8",
    ),
    (
        "Bob Buyer",
        "bob@example.org",
        "sales@demo.example",
        "Quote for 200 licences",
        "Hi,\nplease send us a quote for 200 licences, yearly billing.\n\nBob",
        "utf-8",
    ),
]


# Mail from these senders arrives as if an MTA in front had checked it (ADR 0009): the
# ticket view shows them verified and the others unverified.
VOUCHED_FOR = frozenset({"taro.yamada@example.jp", "bob@example.org"})


def send_demo_mails(port: int, host: str = "127.0.0.1") -> int:
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        for name, sender, to, subject, body, charset in DEMO_MAILS:
            msg = EmailMessage()
            if sender in VOUCHED_FOR:
                domain = sender.split("@")[1]
                msg["Authentication-Results"] = (
                    f"{TRUSTED_AUTHSERV_ID}; spf=pass smtp.mailfrom={sender}; "
                    f"dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
                )
            msg["From"] = f"{name} <{sender}>"
            msg["To"] = to
            msg["Subject"] = subject
            msg["Date"] = formatdate(localtime=False)
            msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
            msg.set_content(body, charset=charset)
            smtp.send_message(msg)
    return len(DEMO_MAILS)
