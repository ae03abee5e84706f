"""The demo tenant's templates, phrases, folders and signatures (`python -m
services.composition seed-demo`, run by `make run` and the tests' stack after accounts
seeds the tenant): a few realistic ones in Japanese and English, so the reply editor's
picker and its suggestions have something to offer the demo mails.

Seeded once: the rows have fixed ids, and when any of the templates is there already
(even deleted: composition keeps a deleted template's row) nothing is added, so a second
run changes nothing and what an administrator changed or deleted stays as they left it.
A folder or signature of the same name or inbox made by an administrator first is kept
(the templates go into the existing folder). Written through composition's own
database only; the tenant and inbox ids are the demo's fixed ones
(services.runtime.demo)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from services.runtime.demo import DEMO_ADMIN, DEMO_TENANT, SALES_INBOX

from .api import search_text


def _id(kind: str, name: str) -> uuid.UUID:
    """A fixed id for a seeded row, the same on every run."""
    return uuid.uuid5(DEMO_TENANT, f"composition:{kind}:{name}")


@dataclass(frozen=True)
class SeedTemplate:
    kind: str  # template | phrase
    name: str
    body_text: str
    folder: str = ""
    keywords: tuple[str, ...] = ()
    inbox_ids: tuple[uuid.UUID, ...] = ()
    subject: str = ""
    id: uuid.UUID = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", _id(self.kind, self.name))


@dataclass(frozen=True)
class SeedSignature:
    name: str
    body_text: str
    inbox_id: uuid.UUID | None  # None: the tenant's default


FOLDERS = ("配送・ご注文 / Orders", "アカウント / Account", "営業 / Sales")

TEMPLATES = (
    SeedTemplate(
        "template",
        "配送状況のご案内",
        "{{customer.name}} 様\n\n"
        "いつもご利用いただき、誠にありがとうございます。\n"
        "{{operator.name}}でございます。\n\n"
        "お問い合わせいただいたご注文の配送状況を確認いたしました。\n"
        "商品は現在配送中で、2〜3日以内にお届けする予定です。\n"
        "お届けまで今しばらくお待ちくださいますよう、お願い申し上げます。\n",
        folder=FOLDERS[0],
        keywords=("配送", "届かない", "届きません", "注文"),
    ),
    SeedTemplate(
        "template",
        "Delivery status",
        "Dear {{customer.name}},\n\n"
        "Thank you for your message. I have checked your order: the parcel is on its "
        "way and should reach you within two to three days.\n",
        folder=FOLDERS[0],
        keywords=("delivery", "parcel", "shipping", "order", "arrived"),
    ),
    SeedTemplate(
        "template",
        "パスワード再設定のご案内",
        "{{customer.name}} 様\n\n"
        "お問い合わせいただき、ありがとうございます。\n"
        "ログイン画面の「パスワードをお忘れの方」から、パスワードを再設定いただけます。\n"
        "再設定のメールが届かない場合は、迷惑メールフォルダもご確認ください。\n",
        folder=FOLDERS[1],
        keywords=("パスワード", "ログイン", "再設定"),
    ),
    SeedTemplate(
        "template",
        "Password reset",
        "Dear {{customer.name}},\n\n"
        "Thank you for getting in touch. You can reset your password with the "
        '"Forgot your password?" link on the sign-in page; the mail with the link '
        "arrives within a few minutes (please check your spam folder too).\n",
        folder=FOLDERS[1],
        keywords=("password", "log in", "login", "reset"),
    ),
    SeedTemplate(
        "template",
        "お見積りのご送付",
        "{{customer.name}} 様\n\n"
        "お見積りのご依頼をいただき、誠にありがとうございます。\n"
        "ご依頼の内容でお見積書を作成し、本メールに添付いたしました。\n"
        "ご不明な点がございましたら、お気軽にお問い合わせください。\n",
        folder=FOLDERS[2],
        keywords=("見積", "ライセンス", "価格"),
        inbox_ids=(SALES_INBOX,),
    ),
    SeedTemplate(
        "template",
        "Quote",
        "Dear {{customer.name}},\n\n"
        "Thank you for your interest. Please find our quote attached; it is valid for "
        "30 days. I would be glad to go through it with you on a call.\n",
        folder=FOLDERS[2],
        keywords=("quote", "licences", "licenses", "pricing", "billing"),
        inbox_ids=(SALES_INBOX,),
    ),
    SeedTemplate("phrase", "お詫び", "ご迷惑をおかけしており、大変申し訳ございません。"),
    SeedTemplate("phrase", "結びの挨拶", "今後とも何卒よろしくお願い申し上げます。"),
    SeedTemplate("phrase", "Apology", "We are sorry for the trouble this has caused."),
    SeedTemplate(
        "phrase",
        "Closing",
        "If you have any further questions, just reply to this mail; we are happy to help.",
    ),
)

SIGNATURES = (
    SeedSignature(
        "サポート / Support",
        "--\n{{operator.name}}\nDemo Company カスタマーサポート / Customer Support\n"
        "{{inbox.address}}",
        None,
    ),
    SeedSignature(
        "営業 / Sales",
        "--\n{{operator.name}}\nDemo Company 営業部 / Sales\n{{inbox.address}}",
        SALES_INBOX,
    ),
)


async def seed_demo(conn: asyncpg.Connection, now: datetime) -> int:
    """The demo's rows, the first time; the number of rows added (0: seeded before)."""
    added = 0
    async with conn.transaction():
        if await conn.fetchval(
            "SELECT count(*) FROM templates WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            DEMO_TENANT,
            [t.id for t in TEMPLATES],
        ):
            return 0
        folders: dict[str, uuid.UUID] = {}
        for name in FOLDERS:
            status = await conn.execute(
                "INSERT INTO folders (tenant_id, id, name, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING",
                DEMO_TENANT,
                _id("folder", name),
                name,
                now,
            )
            added += status == "INSERT 0 1"
            # the folder of that name, ours or one an administrator made first
            folders[name] = await conn.fetchval(
                "SELECT id FROM folders WHERE tenant_id = $1 AND parent_id IS NULL "
                "AND lower(name) = lower($2)",
                DEMO_TENANT,
                name,
            )
        for t in TEMPLATES:
            status = await conn.execute(
                "INSERT INTO templates (tenant_id, id, kind, folder_id, name, subject, "
                "body_text, keywords, inbox_ids, search_text, updated_by, updated_by_name, "
                "created_at, updated_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$13) "
                "ON CONFLICT DO NOTHING",
                DEMO_TENANT,
                t.id,
                t.kind,
                folders.get(t.folder),
                t.name,
                t.subject,
                t.body_text,
                list(t.keywords),
                list(t.inbox_ids),
                search_text(t.name, t.subject, t.body_text, t.keywords),
                DEMO_ADMIN,
                "Demo Admin",
                now,
            )
            added += status == "INSERT 0 1"
        for s in SIGNATURES:
            status = await conn.execute(
                "INSERT INTO signatures (tenant_id, id, inbox_id, name, body_text, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                DEMO_TENANT,
                _id("signature", s.name),
                s.inbox_id,
                s.name,
                s.body_text,
                now,
            )
            added += status == "INSERT 0 1"
    return added
