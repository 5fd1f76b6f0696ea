"""The one parser of JSON a client sends: REST bodies, the widget's offline
messages, operator and widget socket frames.

Here rather than in each caller because every caller needs the same three
refusals, and each one that was missed was a server error or a dead socket:

* text that is not UTF-8, or not JSON, or ``NaN``/``Infinity`` (not JSON);
* nesting so deep that the parser gives up (``RecursionError``: depth
  20,000 fits in a 64 KiB frame);
* a lone UTF-16 surrogate (``"\\ud800"``): Python parses it into a ``str``
  that no UTF-8 encoder, and so no database, template or socket, will take.

Lives in ``presence``, the lowest app with a client socket, so that the widget
and the API, above it, share it.
"""

import json


class InvalidJson(ValueError):
    """Not a JSON document this server can use; the message says why (for a
    400's detail, never containing the input)."""


def json_parse(raw: str | bytes) -> object:
    """Parse untrusted JSON text (``bytes`` must be UTF-8) or raise ``InvalidJson``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=_reject_constant)
        # A lone surrogate can hide anywhere (a value, a key, deep in a list):
        # encoding the whole document finds it at C speed, where a walk in
        # Python would not.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise InvalidJson("nested too deeply") from None
    except UnicodeError:  # a ValueError too: caught first
        raise InvalidJson("not UTF-8, or a lone surrogate") from None
    except ValueError as exc:
        raise InvalidJson(str(exc)[:200]) from None
    return data


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")
