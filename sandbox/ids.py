"""Generates Slack-looking identifiers (C…, D…, V…, F…, Ev…)."""

from __future__ import annotations

import itertools
import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class IdFactory:
    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self, prefix: str, width: int = 10) -> str:
        # A counter keeps ids unique and stable run to run, which helps debugging.
        return prefix + _base36(next(self._counter)).rjust(width, "0")

    @staticmethod
    def opaque(length: int = 24) -> str:
        """Unguessable tokens (tickets, response_url ids) must not be predictable."""
        return secrets.token_hex(length // 2)


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, remainder = divmod(number, 36)
        digits = _ALPHABET[remainder] + digits
        if number == 0:
            return digits
