"""Pseudonyms follow the documented formula at every length a column can take."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from retentiond.keyring import Keyring

SECRET = bytes(range(32))


def documented(domain: str, value: str, length: int) -> str:
    """base32(HMAC(HMAC(secret, context || domain), tag || length || value)), cut to length."""
    derived = hmac.new(SECRET, b"retentiond pseudonym v1\x00" + domain.encode(),
                       hashlib.sha256).digest()
    payload = value.encode()
    mac = hmac.new(derived, b"s" + len(payload).to_bytes(8, "big") + payload, hashlib.sha256)
    return base64.b32encode(mac.digest()).decode().lower()[:length]


@pytest.mark.parametrize("length", range(1, 53))
def test_a_pseudonym_is_the_documented_digest_cut_to_any_length(length: int):
    """Encoding only the digest bytes the cut keeps gives the same text as encoding them all."""
    keyring = Keyring("k1", SECRET)

    assert [documented("customer-email", v, length) for v in ("ann@example.com", "", "ü")] == [
        keyring.pseudonym("customer-email", v, length) for v in ("ann@example.com", "", "ü")]
