"""Who may do what: roles, bearer tokens and their hashes.

A token is 32 random bytes from :mod:`secrets` (256 bits), shown once to whoever
creates it and stored only as its SHA-256 hex digest. A fast hash is enough here, and
better than a password hash: slow hashes (bcrypt, scrypt, argon2) exist to make guessing
*low-entropy* passwords expensive, but nobody can enumerate 2**256 random tokens, fast
hash or not. A deterministic digest also lets the store find a token by an indexed
lookup instead of trying every salted hash. Comparison of digests is constant-time
(:func:`hmac.compare_digest`) so response times reveal nothing about how much of a
guessed token matched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from gridcore._time import Clock, default_clock, to_utc
from gridcore.errors import AuthenticationError, InvalidValueError, PermissionDeniedError

__all__ = [
    "Principal",
    "Role",
    "TOKEN_PREFIX",
    "TokenRecord",
    "bearer_to_token",
    "generate_token",
    "hash_token",
    "issue_token",
    "require_role",
    "verify_token",
]

TOKEN_PREFIX = "gc_"  # lets secret scanners and people recognise a leaked gridcore token
_TOKEN_BYTES = 32


class Role(StrEnum):
    """Roles of the people who use the service."""

    SUPERVISOR = "supervisor"  # 网格监督员: reports, checks on site
    DISPATCHER = "dispatcher"  # 指挥中心: files, dispatches, closes
    DEPARTMENT = "department"  # 主管部门: handles its own cases
    CHIEF = "chief"  # 街巷长: sees their own grids
    VOLUNTEER = "volunteer"  # 小巷管家: helps one chief; reports in and reads their alleys
    STREET = "street"  # 街道办事处: a street office, its own street
    ADMIN = "admin"  # everything, including other chiefs' grids


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidValueError(
            f"unknown role {value!r}; valid roles: {', '.join(r.value for r in Role)}"
        ) from None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    ``subject`` ties the token to a record: the chief's id for ``chief`` and for
    ``volunteer`` (the chief helped), the department code (optionally ``CODE:DIVISION``,
    its jurisdiction) for ``department``, the 9-digit street code for ``street``, a
    division code (the area in charge) or the name for ``supervisor`` and ``dispatcher``.
    What each may see and do is decided by `gridcore.access`.
    """

    name: str
    role: Role
    subject: str


@dataclass(frozen=True)
class TokenRecord:
    """What the store keeps about a token: never the token itself."""

    token_hash: str
    role: Role
    name: str
    subject: str
    created_at: dt.datetime

    def to_principal(self) -> Principal:
        """Return the caller this token stands for."""
        return Principal(name=self.name, role=self.role, subject=self.subject)


def generate_token() -> str:
    """Return a new random bearer token (``gc_`` + 43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored.

    Example
    -------
    >>> hash_token("gc_abc")[:12]
    '54599c6466fc'
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify_token(token: str, token_hash: str) -> bool:
    """Tell, in constant time, whether ``token`` hashes to ``token_hash``."""
    return hmac.compare_digest(hash_token(token), token_hash)


def issue_token(
    *,
    role: Role | str,
    name: str,
    subject: str | None = None,
    now: dt.datetime | None = None,
    clock: Clock | None = None,
) -> tuple[str, TokenRecord]:
    """Create a token for someone.

    Parameters
    ----------
    role : Role or str
        One of supervisor, dispatcher, department, chief, admin.
    name : str
        Who holds it (a person or a department), for the audit trail.
    subject : str, optional
        Chief id (role chief) or department code (role department); defaults to
        ``name``.
    now : datetime, optional
        Creation time (naive: city time), default ``clock.now_utc()``.
    clock : Clock, optional
        The city's clock (default `gridcore._time.default_clock`).

    Returns
    -------
    (str, TokenRecord)
        The token, to show once, and the record to store.

    Raises
    ------
    ValueError
        Unknown role or empty name.
    """
    role = _role(role)
    if not name or not name.strip():
        raise InvalidValueError("a token needs the name of who holds it; got an empty name")
    token = generate_token()
    created = to_utc(now) if now is not None else (clock or default_clock()).now_utc()
    record = TokenRecord(
        token_hash=hash_token(token), role=role, name=name.strip(),
        subject=(subject or name).strip(), created_at=created,
    )
    return token, record


def bearer_to_token(authorization: str | None) -> str:
    """Extract the token from an ``Authorization: Bearer ...`` header value.

    Raises
    ------
    AuthenticationError
        Missing header, another scheme, or an empty token.
    """
    if not authorization:
        raise AuthenticationError(
            "no credentials; send 'Authorization: Bearer TOKEN' "
            "(create one with 'gridcore token create --role ROLE --name NAME')"
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "the Authorization header must read 'Bearer TOKEN'"
        )
    return token.strip()


def require_role(principal: Principal, *roles: Role) -> None:
    """Refuse a caller whose role is not among ``roles``.

    Raises
    ------
    PermissionDeniedError
        Naming the caller's role and the roles allowed.
    """
    if principal.role not in roles:
        raise PermissionDeniedError(
            f"role {principal.role.value!r} may not do this; "
            f"allowed roles: {', '.join(r.value for r in roles)}"
        )
