"""Ed25519 key files: written private (0600, PKCS8 PEM), read back, refused with one line."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from clearcube.errors import ConfigError
from clearcube.products.signing import (
    ENV_SIGNING_KEY,
    fingerprint,
    load_public_key,
    load_signing_key,
    new_key_pair,
    signing_key_path,
)


def test_new_key_pair_files(tmp_path):
    pair = new_key_pair(tmp_path / "keys")
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert pair.private.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS8
    assert pair.public.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
    key = serialization.load_pem_private_key(pair.private.read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert pair.fingerprint == fingerprint(key.public_key())
    assert pair.fingerprint.startswith("sha256:")
    assert len(pair.fingerprint) == len("sha256:") + 64
    assert load_signing_key(pair.private).fingerprint == pair.fingerprint
    assert load_public_key(pair.public).fingerprint == pair.fingerprint
    assert load_public_key(pair.private).fingerprint == pair.fingerprint  # its public half
    other = new_key_pair(tmp_path / "other")
    assert other.fingerprint != pair.fingerprint


def test_the_umask_does_not_loosen_the_private_key(tmp_path):
    import os

    old = os.umask(0)
    try:
        pair = new_key_pair(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600


def test_an_existing_key_is_never_replaced(tmp_path):
    pair = new_key_pair(tmp_path)
    before = pair.private.read_bytes()
    with pytest.raises(ConfigError, match="exists; an existing key is never replaced"):
        new_key_pair(tmp_path)
    assert pair.private.read_bytes() == before


def test_a_signature_verifies_only_its_message_with_its_key(tmp_path):
    signer = load_signing_key(new_key_pair(tmp_path / "a").private)
    other = load_public_key(new_key_pair(tmp_path / "b").public)
    signature = signer.sign(b"head")
    assert signer.public().verifies(b"head", signature)
    assert not signer.public().verifies(b"head!", signature)
    assert not other.verifies(b"head", signature)
    assert not signer.public().verifies(b"head", "not base64!")
    # a plain Ed25519 signature of the same bytes is not a clearcube trail signature
    raw = signer.key.sign(b"head")
    import base64

    assert not signer.public().verifies(b"head", base64.b64encode(raw).decode())


def pem(key, encryption=None):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key", "not a PEM private key"),
        (
            pem(
                ed25519.Ed25519PrivateKey.generate(),
                serialization.BestAvailableEncryption(b"secret"),
            ),
            "the key is encrypted",
        ),
        (pem(ec.generate_private_key(ec.SECP256R1())), "not Ed25519"),
    ],
)
def test_bad_signing_keys_are_one_line_config_errors(tmp_path, content, message):
    path = tmp_path / "key.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_signing_key(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    assert "clearcube keys new" in str(info.value)


def test_bad_public_keys_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_signing_key(tmp_path / "absent.pem")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_public_key(tmp_path / "absent.pub.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key(junk)
    ec_pub = tmp_path / "ec.pub.pem"
    ec_pub.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        load_public_key(ec_pub)


def test_which_key_a_run_signs_with(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_SIGNING_KEY, raising=False)
    monkeypatch.delenv("CLEARCUBE_AUDIT_KEY", raising=False)
    assert signing_key_path() is None
    monkeypatch.setenv(ENV_SIGNING_KEY, str(tmp_path / "env.pem"))
    assert signing_key_path() == tmp_path / "env.pem"
    assert signing_key_path(tmp_path / "given.pem") == tmp_path / "given.pem"  # the option wins
    monkeypatch.delenv(ENV_SIGNING_KEY)
    monkeypatch.setenv("CLEARCUBE_AUDIT_KEY", "shared-secret")  # the retired HMAC key
    with pytest.raises(ConfigError, match="CLEARCUBE_AUDIT_KEY is no longer read"):
        signing_key_path()
