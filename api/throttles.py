"""Rate limits of the REST API's writes that reach visitors (log-in: ``accounts.throttles``)."""

from rest_framework.throttling import SimpleRateThrottle

from widget.ratelimit import Limit, counted_in_front, ratelimit_hit


class OperatorMessageRateThrottle(SimpleRateThrottle):
    """Replies per operator, whatever device or credentials send them.

    A fast human operator types a reply every few seconds and a retry with the
    same ``client_id`` counts too, so 120 a minute never stops a person; it
    stops a runaway script from flooding visitors' widgets. The rate is set
    here, not in ``DEFAULT_THROTTLE_RATES``: it is part of this endpoint's
    documented behaviour, not a deployment knob. Counted like the visitors'
    messages (``widget.ratelimit``: one round trip, an unreachable store lets
    the reply through: a reply to a visitor matters more than the limit for
    the moment, and the database still takes each one once).
    """

    scope = "operator-messages"
    rate = "120/min"
    retry_after: int | None = None

    def allow_request(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return True  # refused by the permission check anyway
        counted, self.retry_after = counted_in_front(request._request)
        if not counted:
            self.retry_after = ratelimit_hit(scope=self.scope, ident=str(request.user.pk), limits=self.limits())
        return self.retry_after is None

    def limits(self) -> tuple[Limit, ...]:
        """The rate as ``widget.ratelimit`` counts it (``api.asgi`` counts replies it serves the same way)."""
        count, period = self.parse_rate(self.rate)
        return (Limit(count=count, period=period),)

    def wait(self) -> float | None:
        return self.retry_after
