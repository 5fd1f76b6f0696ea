"""Rate limits of the REST API (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``)."""

import logging

from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class LoginRateThrottle(SimpleRateThrottle):
    """Password guesses per client address.

    Keyed by the connection's address only: ``X-Forwarded-For`` is set by the
    client unless a proxy overwrites it, so trusting it would let a guesser pick
    a fresh identity per request. Behind a proxy, Daphne's ``--proxy-headers``
    puts the real client address in ``REMOTE_ADDR``.
    """

    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.META.get("REMOTE_ADDR") or "unknown"}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            # The cache (Redis) is down: a login must still work; passwords are
            # hashed slowly enough that a short outage is no open door.
            logger.warning("login throttle unavailable; request let through", exc_info=True)
            return True
