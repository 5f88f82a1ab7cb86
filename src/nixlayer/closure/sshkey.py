"""OpenSSH public key validation: the key type must match the one inside the blob."""

from __future__ import annotations

import base64
import binascii
import struct

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def check_public_key(line: str) -> str:
    """Return `line` if it is `<type> <base64-blob> [comment]`; raise ValueError otherwise."""
    if any(c in line for c in "\n\r\x00"):
        raise ValueError("an OpenSSH public key is one line")
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key (expected '<type> <base64> [comment]')")
    key_type, blob_b64 = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise ValueError(f"unknown key type {key_type!r}")
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("key data is not valid base64") from exc
    if len(blob) < 4:
        raise ValueError("key data is truncated")
    (n,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + n] != key_type.encode():
        raise ValueError(f"key data does not hold a {key_type} key")
    return line.strip()
