"""The widget has no models of its own: visitors and their messages live in ``conversations``."""
