"""Visitor tokens as the widget socket knows them.

A visitor proves who they are with an opaque token the server issued
(``conversations``); only its digest is stored, and the widget socket of a
visitor listens under that digest. A socket that names a wrong token (or one
of another account) simply hears nothing: no lookup on the connect path.
"""

import hashlib
import secrets

TOKEN_MAX = 100


def visitor_token_new() -> str:
    return secrets.token_urlsafe(32)


def visitor_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_token_valid(token: object) -> bool:
    return isinstance(token, str) and 20 <= len(token) <= TOKEN_MAX and token.isascii() and token.isprintable()
