"""Finding personal data in text: emails, phone numbers, payment card numbers (Luhn-checked), IBANs
(mod-97-checked) and IP addresses, replaced by typed placeholders such as ``[EMAIL]``.

Pure functions over strings; the ``redact_pii`` op applies them to shards. Checksums keep ordinary
long numbers (order ids, amounts) from being taken for cards or IBANs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Literal

PiiType = Literal["email", "iban", "card", "ip", "phone"]
PII_TYPES: tuple[PiiType, ...] = ("email", "iban", "card", "ip", "phone")  # the order they are replaced in

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
# IPv6 candidates: 2 to 8 colon-separated hex groups (empty groups allowed, so ``::1``, ``fe80::``
# and ``::ffff:192.0.2.1`` are candidates); ``ipaddress`` decides which are addresses (times such as
# 10:30:45 and MAC addresses are not).
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"
)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}(?![\w])"
)


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _card(match: str) -> bool:
    digits = re.sub(r"[ -]", "", match)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ip(match: str) -> bool:
    if not any(ch.isalnum() for ch in match):  # a bare "::" in prose is punctuation, not an address
        return False
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


def _phone(match: str) -> bool:
    return 7 <= sum(ch.isdigit() for ch in match) <= 15


_RULES: dict[PiiType, list[tuple[re.Pattern[str], Callable[[str], bool] | None]]] = {
    "email": [(_EMAIL, None)],
    "iban": [(_IBAN, iban_ok)],
    "card": [(_CARD, _card)],
    "ip": [(_IPV6, _ip), (_IPV4, _ip)],  # IPv6 first: it may end in a dotted quad
    "phone": [(_PHONE, _phone)],
}


# Card and phone numbers are not looked for inside IBAN-shaped text: an IBAN that fails its checksum
# (a typo, or one the user chose not to redact) is not a phone number.
_SHIELDED_BY_IBAN: frozenset[PiiType] = frozenset({"card", "phone"})


def redact(text: str, types: Sequence[PiiType], counts: dict[str, int]) -> str:
    """``text`` with every found item replaced by ``[TYPE]``; ``counts[type]`` grows by the number found."""
    for kind in PII_TYPES:
        if kind not in types:
            continue
        for pattern, check in _RULES[kind]:
            shield = [m.span() for m in _IBAN.finditer(text)] if kind in _SHIELDED_BY_IBAN else []
            text = pattern.sub(_replacer(kind, check, shield, counts), text)
    return text


def _replacer(
    kind: PiiType,
    check: Callable[[str], bool] | None,
    shield: list[tuple[int, int]],
    counts: dict[str, int],
) -> Callable[[re.Match[str]], str]:
    placeholder = f"[{kind.upper()}]"

    def sub(m: re.Match[str]) -> str:
        found = m.group(0)
        if check is not None and not check(found):
            return found
        if any(start < m.end() and m.start() < end for start, end in shield):
            return found
        counts[kind] = counts.get(kind, 0) + 1
        return placeholder

    return sub
