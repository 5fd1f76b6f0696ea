"""IANA time zone names: the one check accounts and opening hours share."""

import functools
import zoneinfo


@functools.cache
def _available_zones() -> frozenset[str]:
    # available_timezones() walks the tz database (~10 ms), so do it once.
    # "localtime" shows up when the host has /usr/share/zoneinfo/localtime;
    # it is host-dependent, not an IANA name, so never accept it.
    return frozenset(zoneinfo.available_timezones()) - {"localtime"}


def is_known_zone(name: str) -> bool:
    if name not in _available_zones():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
