"""The pseudonymisation key and the tokens it makes.

The key comes from an environment variable or a file named in the policy, never from the
policy itself, and this module is the only place that holds its bytes. Tokens are keyed
HMAC-SHA256, so they are stable across sources and runs (joins still work) and cannot be
reversed or recomputed without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from pipelines.errors import ConfigError

# 32 bytes is the HMAC-SHA256 block-size guidance for a key with full strength; refusing
# shorter keys stops "test" or a pasted placeholder from reaching production.
MIN_KEY_BYTES = 32
TOKEN_PREFIX = "tok_"
_TOKEN_HEX = 24  # 96 bits: collisions become likely only around 2**48 distinct values
# Tokens are spelled with the letters a-p instead of hex digits, so that a token can never
# contain a digit run that a later scan would take for a phone or card number.
_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


class PseudonymKey:
    """A secret HMAC key. Its repr and str never show the bytes."""

    __slots__ = ("_key", "source")

    def __init__(self, key: bytes, source: str):
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"pseudonymisation key from {source} is {len(key)} bytes;"
                f" at least {MIN_KEY_BYTES} are required"
            )
        self._key = key
        self.source = source

    @classmethod
    def from_env(cls, variable: str) -> PseudonymKey:
        value = os.environ.get(variable)
        if not value:
            raise ConfigError(
                f"pseudonymisation key: environment variable {variable} is not set;"
                " refusing to pseudonymise without a key"
            )
        return cls(value.encode("utf-8"), f"${variable}")

    @classmethod
    def from_file(cls, path: Path) -> PseudonymKey:
        try:
            value = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(
                f"pseudonymisation key: cannot read {path}: {exc.strerror};"
                " refusing to pseudonymise without a key"
            ) from None
        return cls(value, str(path))

    @property
    def key_id(self) -> str:
        """A public fingerprint (HMAC of a constant): tells whether two runs used one key."""
        return hmac.new(self._key, b"steward/key-id", hashlib.sha256).hexdigest()[:12]

    def token(self, domain: str, value: str) -> str:
        """The token of ``value`` in ``domain`` (the same value in two domains differs)."""
        digest = hmac.new(self._key, f"{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()
        return TOKEN_PREFIX + digest[:_TOKEN_HEX].translate(_LETTERS)

    def __repr__(self) -> str:
        return f"PseudonymKey(source={self.source!r}, key_id={self.key_id!r})"

    __str__ = __repr__
