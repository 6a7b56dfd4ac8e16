"""Signed checkpoints of the audit ledger, in the C2SP signed-note / tlog-checkpoint format.

A checkpoint commits to the ledger's first ``size`` records through the chain head at that
record, signed with an Ed25519 key that only the daemon holds (a systemd credential)::

    <origin>
    <size>
    <base64 of the 32-byte chain head>

    — <origin> <base64(key id || signature)>

(the tlog-checkpoint body carries a Merkle root where ours carries the chain head: both
commit to every record up to ``size``).  The signature covers the body including its final
newline; the key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
Without the private key nobody can forge a checkpoint; the public key is enough to check one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from retentiond.errors import ConfigError

_ED25519 = b"\x01"
_DASH = "\u2014 "


def key_id(name: str, public: Ed25519PublicKey) -> bytes:
    """The signed-note key id of ``public`` under ``name``."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint says: the log's name, how many records, the chain head at the last."""

    origin: str
    size: int
    head: str
    """Hex, as the ledger stores chain hashes."""

    def body(self) -> str:
        """The note text that is signed."""
        head = base64.b64encode(bytes.fromhex(self.head)).decode()
        return f"{self.origin}\n{self.size}\n{head}\n"


def sign(checkpoint: Checkpoint, private: Ed25519PrivateKey) -> str:
    """The signed note of ``checkpoint``."""
    body = checkpoint.body()
    signature = private.sign(body.encode())
    stamp = base64.b64encode(key_id(checkpoint.origin, private.public_key()) + signature)
    return f"{body}\n{_DASH}{checkpoint.origin} {stamp.decode()}\n"


class NoteError(ValueError):
    """A note that is malformed or whose signature does not verify."""


def open_note(note: str, origin: str, public: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint in ``note``, if signed by ``public`` under ``origin``; NoteError if not."""
    body, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise NoteError("no signature block")
    body += "\n"
    wanted = key_id(origin, public)
    for line in signatures.splitlines():
        if not line.startswith(_DASH):
            raise NoteError("malformed signature line")
        name, _, encoded = line[len(_DASH):].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise NoteError("signature is not base64") from None
        if name != origin or blob[:4] != wanted:
            continue  # another signer's line: not ours to judge
        try:
            public.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise NoteError("the signature does not verify with the configured key") from None
        return _parse(body, origin)
    raise NoteError(f"not signed by the configured key of {origin!r}")


def _parse(body: str, origin: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[0] != origin:  # noqa: PLR2004 - origin, size, head, ""
        raise NoteError("not a checkpoint of this log")
    try:
        size = int(lines[1])
        head = base64.b64decode(lines[2], validate=True).hex()
    except ValueError:
        raise NoteError("malformed checkpoint body") from None
    return Checkpoint(origin, size, head)


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or a base64 32-byte seed."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(data.strip()))
    except ValueError as exc:
        raise ConfigError(f"the signing key is not an Ed25519 key ({exc})",
                          "make one with 'retentiond audit keygen'") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("the signing key is not an Ed25519 key",
                          "make one with 'retentiond audit keygen'")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or base64 32 raw bytes."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip()))
    except ValueError as exc:
        raise ConfigError(f"the verify key is not an Ed25519 public key ({exc})",
                          "use the public key 'retentiond audit keygen' wrote") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the verify key is not an Ed25519 public key",
                          "use the public key 'retentiond audit keygen' wrote")
    return key


def new_keypair() -> tuple[bytes, bytes]:
    """A fresh key pair as PEM: (private, public)."""
    private = Ed25519PrivateKey.generate()
    return (private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
            private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
