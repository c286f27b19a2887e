from __future__ import annotations

import pytest

from fmstack.data.pii import PII_TYPES, iban_ok, luhn_ok, redact


def test_luhn_and_iban_checksums() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("5555555555554444")
    assert not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and iban_ok("DE89370400440532013000")
    assert not iban_ok("GB82 WEST 1234 5698 7654 33")


@pytest.mark.parametrize(
    ("text", "expected", "found"),
    [
        ("write to john.doe+x@mail.example.org now", "write to [EMAIL] now", {"email": 1}),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok", {"card": 1}),
        ("order 4111 1111 1111 1112 ok", "order 4111 1111 1111 1112 ok", {}),  # fails Luhn
        ("pay DE89 3704 0044 0532 0130 00 please", "pay [IBAN] please", {"iban": 1}),
        ("pay DE00 3704 0044 0532 0130 00 please", "pay DE00 3704 0044 0532 0130 00 please", {}),
        ("from 10.0.0.12 and 2001:db8::1", "from [IP] and [IP]", {"ip": 2}),
        ("not an ip 999.1.1.1", "not an ip 999.1.1.1", {}),
        ("loopback ::1 and fe80::", "loopback [IP] and [IP]", {"ip": 2}),
        ("mapped ::ffff:192.0.2.1.", "mapped [IP].", {"ip": 1}),
        (
            "at 10:30:45 from 00:1A:2B:3C:4D:5E, std::vector :: ok",
            "at 10:30:45 from 00:1A:2B:3C:4D:5E, std::vector :: ok",
            {},
        ),
        ("bad IBAN GB82 WEST 1234 5698 7654 33 here", "bad IBAN GB82 WEST 1234 5698 7654 33 here", {}),
        ("call +44 20 7946 0958 today", "call [PHONE] today", {"phone": 1}),
        ("call (555) 123-4567", "call [PHONE]", {"phone": 1}),
        ("amount 1250 and year 2024", "amount 1250 and year 2024", {}),
    ],
)
def test_redact_finds_typed_pii(text: str, expected: str, found: dict[str, int]) -> None:
    counts: dict[str, int] = {}
    assert redact(text, PII_TYPES, counts) == expected
    assert counts == found


def test_redact_only_the_requested_types() -> None:
    counts: dict[str, int] = {}
    assert redact("a@b.co 10.0.0.1", ["ip"], counts) == "a@b.co [IP]"
    iban = "GB82 WEST 1234 5698 7654 32"  # valid, but IBANs were not asked for: left whole
    assert redact(f"pay {iban} or call 020 7946 0958", ["phone"], counts) == f"pay {iban} or call [PHONE]"
