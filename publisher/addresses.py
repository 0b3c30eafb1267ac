"""Email addresses at the door: one normal form for storing, comparing, hashing and headers.

Addresses are checked with email-validator without DNS (no network in tests, no slow imports).
The stored form keeps the local part as written and an ASCII, lower-case domain (IDNA), so the
address can go into a To header without RFC 2047 or SMTPUTF8; comparisons ignore case.
"""

from __future__ import annotations

import hashlib

from email_validator import EmailNotValidError, validate_email

from publisher.errors import InputError

MAX_ADDRESS = 320
_FORBIDDEN = ("\r", "\n", "\x00")


def normalize_address(value: str) -> str:
    """Return the stored form of ``value`` or raise InputError saying what is wrong with it."""
    if not isinstance(value, str):
        raise InputError(f"email must be text, not {type(value).__name__}")
    if any(c in value for c in _FORBIDDEN):
        raise InputError("email holds a line break or NUL character")
    address = value.strip()
    if not address:
        raise InputError("email is empty")
    if len(address) > MAX_ADDRESS:
        raise InputError(f"email is {len(address)} characters; the limit is {MAX_ADDRESS}")
    try:
        info = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as e:
        raise InputError(f"not a valid email address ({address[:80]!r}): {e}") from e
    domain = (info.ascii_domain or info.domain).lower()
    return f"{info.local_part}@{domain}"


def address_key(value: str) -> str:
    """The case-insensitive comparison key of an address (its normal form, lower-cased)."""
    return normalize_address(value).lower()


def suppression_hash(email: str) -> str:
    """SHA-256 hex of the lower-cased normal form: what erasure keeps instead of the address."""
    return normal_hash(normalize_address(email))


def normal_hash(address: str) -> str:
    """suppression_hash of an address already in normal form, without checking it again
    (an import hashes thousands it has just normalised)."""
    return hashlib.sha256(address.lower().encode("ascii")).hexdigest()
