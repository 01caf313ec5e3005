"""Secrets the hub hands out: registration keys, agent tokens, the admin token.

They are 256-bit random strings, so a single SHA-256 is enough to store them: there is
nothing to brute-force that a slow password hash would protect. Only the digest is kept.
"""

import hashlib
import hmac
import secrets

KEY_PREFIX = "ria_reg_"
TOKEN_PREFIX = "ria_agt_"
ADMIN_PREFIX = "ria_adm_"


def new_secret(prefix):
    return prefix + secrets.token_urlsafe(32)


def digest(secret):
    # surrogateescape: header bytes that are not UTF-8 arrive as surrogates; they hash, and match nothing
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def same_secret(given, expected):
    """Constant-time comparison that takes any header text."""
    return hmac.compare_digest(digest(given), digest(expected))


def bearer(request):
    """The token of an `Authorization: Bearer <token>` header, or "" (the scheme is case-insensitive,
    RFC 9110 section 11.1)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def new_id(prefix, nbytes=6):
    """A short public identifier (shown in lists, safe to log)."""
    return prefix + secrets.token_hex(nbytes)
