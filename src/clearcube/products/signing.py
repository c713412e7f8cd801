"""Ed25519 keys that sign a run's audit trail, so a verifier can tell who produced it.

The producer keeps the private key (a PKCS8 PEM file, readable by its owner only) and publishes
the public key, or its fingerprint, out of band. A hash chain alone proves only that the trail
is self-consistent: anyone can rewrite it and recompute every hash. A signature over the chain's
head can be recomputed only by the holder of the private key, and checked by anyone holding the
public key, which, unlike a shared secret, a verifier can have without being able to sign.

A key's fingerprint is ``sha256:`` and the hex SHA-256 of its 32 raw public-key bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "ENV_SIGNING_KEY",
    "PRIVATE_NAME",
    "PUBLIC_NAME",
    "KeyPair",
    "PublicKey",
    "SigningKey",
    "decode_signature",
    "fingerprint",
    "is_fingerprint",
    "load_public_key",
    "load_signing_key",
    "new_key_pair",
    "signing_key_path",
]

#: The environment variable naming the private key a run signs with.
ENV_SIGNING_KEY = "CLEARCUBE_SIGNING_KEY"

#: The shared-secret variable of earlier versions; a run refuses it rather than ignore it.
_RETIRED_ENV = "CLEARCUBE_AUDIT_KEY"

#: Prepended to every signed message, so a signature made for a clearcube trail is never valid
#: for anything else signed with the same key.
_DOMAIN = b"clearcube audit trail v1\n"

#: The file names :func:`new_key_pair` writes.
PRIVATE_NAME = "clearcube-signing.pem"
PUBLIC_NAME = "clearcube-signing.pub.pem"


def fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:`` and the hex SHA-256 of the key's raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A public key that checks signatures.

    Attributes
    ----------
    key
        The Ed25519 public key.
    fingerprint
        Its fingerprint (``sha256:<hex>``), as the trail records it.
    source
        Where it was read from (for messages).
    """

    key: Ed25519PublicKey
    fingerprint: str
    source: str

    def verifies(self, message: bytes, signature: str) -> bool:
        """Whether ``signature`` (base64) is this key's signature of ``message``."""
        from cryptography.exceptions import InvalidSignature

        raw = decode_signature(signature)
        if raw is None:
            return False
        try:
            self.key.verify(raw, _DOMAIN + message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A private key that signs audit trails.

    Attributes
    ----------
    key
        The Ed25519 private key.
    fingerprint
        The fingerprint of its public key.
    """

    key: Ed25519PrivateKey
    fingerprint: str

    def sign(self, message: bytes) -> str:
        """The base64 Ed25519 signature of ``message``."""
        return base64.b64encode(self.key.sign(_DOMAIN + message)).decode("ascii")

    def public(self) -> PublicKey:
        """The matching public key."""
        return PublicKey(self.key.public_key(), self.fingerprint, "the signing key")


def decode_signature(signature: object) -> bytes | None:
    """The 64 raw bytes of a base64 signature, or ``None`` when it is not one."""
    if not isinstance(signature, str):
        return None
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    return raw if len(raw) == 64 else None


def is_fingerprint(value: object) -> bool:
    """Whether ``value`` has the form of a key fingerprint (``sha256:`` and 64 hex digits)."""
    if not isinstance(value, str) or not value.startswith("sha256:"):
        return False
    digits = value.removeprefix("sha256:")
    return len(digits) == 64 and all(c in "0123456789abcdef" for c in digits)


@dataclass(frozen=True)
class KeyPair:
    """The files :func:`new_key_pair` wrote.

    Attributes
    ----------
    private
        The PKCS8 PEM private key (mode 0600).
    public
        The public key PEM (SubjectPublicKeyInfo), to hand to verifiers.
    fingerprint
        The public key's fingerprint, to publish next to it.
    """

    private: Path
    public: Path
    fingerprint: str


def new_key_pair(folder: str | Path) -> KeyPair:
    """Write a new Ed25519 key pair into ``folder``: ``clearcube-signing.pem`` (the private key,
    PKCS8 PEM, unencrypted, readable by its owner only) and ``clearcube-signing.pub.pem``.

    Raises
    ------
    ConfigError
        One of the two files is already there (an existing key is never replaced).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = Path(folder)
    private_path, public_path = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(
                f"{path} exists; an existing key is never replaced: choose another folder"
            )
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # created with 0600 and O_EXCL: the key is never readable by others, not even for a moment,
    # and a file that appeared since the check above is not overwritten
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
    finally:
        os.close(fd)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with public_path.open("xb") as fh:
        fh.write(public_pem)
    return KeyPair(private_path, public_path, fingerprint(key.public_key()))


def signing_key_path(explicit: str | Path | None = None) -> Path | None:
    """The private key a run signs with: ``explicit``, else ``$CLEARCUBE_SIGNING_KEY``, else
    none.

    Raises
    ------
    ConfigError
        Only the retired ``CLEARCUBE_AUDIT_KEY`` is set: its shared secret is no longer read,
        and a run must not look keyed when it is not.
    """
    if explicit is not None:
        return Path(explicit)
    value = os.environ.get(ENV_SIGNING_KEY)
    if value:
        return Path(value)
    if os.environ.get(_RETIRED_ENV):
        raise ConfigError(
            f"{_RETIRED_ENV} is no longer read (trails are signed with Ed25519 now): create a "
            f"key with `clearcube keys new DIR` and set {ENV_SIGNING_KEY} to its private key "
            f"file, or unset {_RETIRED_ENV}"
        )
    return None


def load_signing_key(path: str | Path) -> SigningKey:
    """Read an Ed25519 private key from a PKCS8 PEM file.

    Raises
    ------
    ConfigError
        The file cannot be read, is not a PEM private key, is encrypted, or is not Ed25519.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path, "signing key")
    hint = "create one with `clearcube keys new DIR`"
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            f"signing key {path}: the key is encrypted; clearcube reads unencrypted PKCS8 PEM "
            f"keys (protect the file with its permissions), or {hint}"
        ) from None
    except ValueError:
        raise ConfigError(
            f"signing key {path}: not a PEM private key (expected '-----BEGIN PRIVATE KEY-----');"
            f" {hint}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"signing key {path}: a {type(key).__name__.removeprefix('_')} key, not Ed25519; {hint}"
        )
    return SigningKey(key, fingerprint(key.public_key()))


def load_public_key(path: str | Path) -> PublicKey:
    """Read an Ed25519 public key from a PEM file (a private key file gives its public key).

    Raises
    ------
    ConfigError
        The file cannot be read, or holds no Ed25519 key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    data = _read(path, "public key")
    hint = "give the clearcube-signing.pub.pem file of the key that signed the run"
    try:
        key: object = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (TypeError, ValueError):
            raise ConfigError(
                f"public key {path}: not a PEM public key (expected '-----BEGIN PUBLIC KEY-----');"
                f" {hint}"
            ) from None
    if isinstance(key, Ed25519PrivateKey):  # pragma: no cover - public_key() never gives one
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"public key {path}: not an Ed25519 key; {hint}")
    return PublicKey(key, fingerprint(key), str(path))


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{what} {path}: cannot be read ({exc.strerror or exc}); give a PEM file"
        ) from None
