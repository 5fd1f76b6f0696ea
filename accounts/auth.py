"""API tokens: one per device, stored hashed, sent as ``Authorization: Token <key>``."""

import hashlib
import secrets
from datetime import datetime

from accounts.models import ApiToken, Operator, hash_token

# A token's last use is written at most this often: authenticating must not write on every request.
TOUCH_EVERY_SECONDS = 60


def token_create(*, operator: Operator, device: str = "", is_mobile: bool = False) -> tuple[str, ApiToken]:
    """Issue a new token; the plain key is returned once and never stored."""
    key = secrets.token_hex(20)
    token = ApiToken.objects.create(
        operator=operator, key_hash=hash_token(key), device=device[:80], is_mobile=is_mobile
    )
    return key, token


def token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(id=token.id).delete()


def token_lookup(key: str) -> ApiToken | None:
    if not key or len(key) > 100:
        return None
    token = (
        ApiToken.objects.select_related("operator", "operator__account")
        .filter(key_hash=hash_token(key), operator__is_active=True)
        .first()
    )
    return token


def token_touch_due(token: ApiToken, *, now: datetime) -> bool:
    return token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOUCH_EVERY_SECONDS


async def atoken_lookup(key: str, *, now: datetime) -> ApiToken | None:
    """``token_lookup`` from an event loop, with PostgreSQL (``chatstatus.adb``):
    the token and the operator columns a reply needs, its last use touched
    as ``ApiTokenAuthentication`` does."""
    from accounts import statements
    from chatstatus import adb

    if not key or len(key) > 100:
        return None
    pool = await adb.pool()
    async with pool.connection() as connection:
        row = await (await connection.execute(statements.TOKEN_SQL, [hash_token(key)])).fetchone()
        if row is None:
            return None
        token = statements.token_from_row(row)
        if token_touch_due(token, now=now):
            await connection.execute(statements.TOKEN_TOUCH_SQL, [now, token.id])
            token.last_used_at = now
    return token


def parse_authorization(header: str | bytes | None) -> str | None:
    """The key of an ``Authorization: Token <key>`` header, else None."""
    if not header:
        return None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _sep, key = header.strip().partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None
    return key.strip()


def token_device_tag(token: ApiToken) -> str:
    """The presence device a token's connections belong to (what its logout ends)."""
    return f"t:{token.id}"


def session_device_tag(session_key: str) -> str:
    """The presence device of one browser session (what a dashboard logout ends)."""

    return "s:" + hashlib.sha256(session_key.encode()).hexdigest()[:24]
