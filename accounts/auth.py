"""API tokens: one per device, stored hashed, sent as ``Authorization: Token <key>``."""

import hashlib
import secrets

from accounts.models import ApiToken, Operator, hash_token


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
