"""The permission catalogue (SEC-4) and the built-in roles every tenant starts with.

Roles are per tenant and editable (accounts owns them); a role is a name and a set of
these permissions, and an operator's permissions are the union of their roles'. The
gateway passes the verified set to every service in gRPC metadata (`x-sb-permissions`),
and each service checks the ones its methods need.
"""

from __future__ import annotations

from dataclasses import dataclass

SEND_WITHOUT_APPROVAL = "send_without_approval"
APPROVE = "approve"
EXPORT = "export"
DOWNLOAD_ATTACHMENTS = "download_attachments"
PRINT = "print"
SEE_CUSTOMER_ADDRESSES = "see_customer_addresses"
MANAGE_RULES = "manage_rules"
MANAGE_TEMPLATES = "manage_templates"
MANAGE_OPERATORS = "manage_operators"
MANAGE_INBOXES = "manage_inboxes"
MANAGE_NOTICES = "manage_notices"
SEE_REPORTS = "see_reports"
TAKE_OVER_LOCKS = "take_over_locks"
VIEW_OPERATION_LOG = "view_operation_log"
ALL_INBOXES = "all_inboxes"
MANAGE_OUTREACH = "manage_outreach"


@dataclass(frozen=True)
class Permission:
    name: str
    description: str


CATALOGUE: tuple[Permission, ...] = (
    Permission(SEND_WITHOUT_APPROVAL, "send replies without a supervisor's approval"),
    Permission(APPROVE, "approve or send back replies awaiting approval"),
    Permission(EXPORT, "export data (CSV downloads)"),
    Permission(DOWNLOAD_ATTACHMENTS, "download attachments and original mails"),
    Permission(PRINT, "print tickets"),
    Permission(SEE_CUSTOMER_ADDRESSES, "see customers' mail addresses and phone numbers"),
    Permission(MANAGE_RULES, "manage routing rules"),
    Permission(MANAGE_TEMPLATES, "manage templates, phrases and signatures"),
    Permission(MANAGE_OPERATORS, "manage operators, roles, security settings and logins"),
    Permission(MANAGE_INBOXES, "manage inboxes, their members and intake channels"),
    Permission(MANAGE_NOTICES, "publish notices shown after login"),
    Permission(SEE_REPORTS, "see reports"),
    Permission(TAKE_OVER_LOCKS, "take over another operator's reply lock"),
    Permission(VIEW_OPERATION_LOG, "read and download the operation log"),
    Permission(ALL_INBOXES, "see every inbox of the tenant, member or not"),
    Permission(
        MANAGE_OUTREACH,
        "manage contact lists, segments, campaigns, the unsubscribe list and notifications",
    ),
)
ALL: frozenset[str] = frozenset(p.name for p in CATALOGUE)

_AGENT = {SEND_WITHOUT_APPROVAL, DOWNLOAD_ATTACHMENTS, PRINT, SEE_CUSTOMER_ADDRESSES}

# name → (permissions, description); created for every new tenant, then editable there.
BUILTIN_ROLES: dict[str, tuple[frozenset[str], str]] = {
    "admin": (ALL, "everything, in every inbox"),
    "supervisor": (
        frozenset(
            _AGENT
            | {
                APPROVE,
                EXPORT,
                SEE_REPORTS,
                TAKE_OVER_LOCKS,
                MANAGE_NOTICES,
                MANAGE_TEMPLATES,
                MANAGE_RULES,
                VIEW_OPERATION_LOG,
                MANAGE_OUTREACH,
            }
        ),
        "approves, takes over locks, sees reports and the operation log",
    ),
    "approver": (frozenset(_AGENT | {APPROVE}), "an agent who may approve replies"),
    "agent": (frozenset(_AGENT), "answers customers in the inboxes of their groups"),
    "trainee": (
        frozenset({DOWNLOAD_ATTACHMENTS, PRINT}),
        "replies need approval; customers' addresses are masked",
    ),
}


def unknown(names: frozenset[str] | set[str]) -> list[str]:
    """The names that are not permissions, sorted."""
    return sorted(set(names) - ALL)
