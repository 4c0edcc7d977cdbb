"""Checksum and format validators, a registry keyed by the names entity definitions use.

A validator answers one of three things about a pattern match (Presidio's ``validate_result``
contract): it is confirmed (a checksum passed), rejected (a checksum or a structural rule
failed: a look-alike such as an order number), or the validator cannot tell. Checksums come
from python-stdnum rather than being written again here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from enum import Enum

from stdnum import iban, luhn, numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError
from stdnum.us import ssn


class Verdict(Enum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNSURE = "unsure"


Validator = Callable[[str], Verdict]

VALIDATORS: dict[str, Validator] = {}


def validator(name: str) -> Callable[[Validator], Validator]:
    """Register ``fn`` under ``name`` (the name entity definitions refer to)."""

    def register(fn: Validator) -> Validator:
        if name in VALIDATORS:
            raise ValueError(f"validator {name!r} registered twice")
        VALIDATORS[name] = fn
        return fn

    return register


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _confirmed_if(ok: bool) -> Verdict:
    return Verdict.CONFIRMED if ok else Verdict.REJECTED


# Issuer prefixes of the networks we report (UnionPay, Visa, Mastercard, Amex, Discover, JCB,
# Diners). Luhn alone passes one random digit string in ten; requiring a known prefix is what
# keeps 16-digit order numbers and 13-digit millisecond timestamps (which start with 1) out.
def _card_prefix_known(digits: str) -> bool:
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    return (
        digits[0] == "4"
        or 51 <= two <= 55
        or 2221 <= four <= 2720
        or two in (34, 37)
        or two == 62
        or four == 6011
        or two == 65
        or 644 <= int(digits[:3]) <= 649
        or 3528 <= four <= 3589
        or two in (36, 38)
        or 300 <= int(digits[:3]) <= 305
        or 622126 <= six <= 622925
    )


@validator("luhn_card")
def _luhn_card(text: str) -> Verdict:
    digits = _digits(text)
    if not 13 <= len(digits) <= 19 or not _card_prefix_known(digits):
        return Verdict.REJECTED
    return _confirmed_if(luhn.is_valid(digits))


@validator("cn_ric")
def _cn_ric(text: str) -> Verdict:
    # GB 11643 check character, a real birth date and a region code stdnum knows. Not
    # ``ric.is_valid``: it also wants the region to have existed in the birth year, but IDs
    # issued after a redistricting carry the new code with an older birth date, so real IDs
    # fail it (Nanshan, 440305, created 1990, holds people born in the 1950s).
    number = text.upper()
    if len(number) != 18 or not number[:17].isdigit():
        return Verdict.REJECTED
    if ric.calc_check_digit(number) != number[-1]:
        return Verdict.REJECTED
    try:
        ric.get_birth_date(number)
    except ValidationError:
        return Verdict.REJECTED
    return _confirmed_if(any(props for _, props in numdb.get("cn/loc").info(number[:6])))


@validator("cn_uscc")
def _cn_uscc(text: str) -> Verdict:
    return _confirmed_if(uscc.is_valid(text.upper()))


@validator("iban")
def _iban(text: str) -> Verdict:
    # mod-97 plus the per-country length and BBAN format.
    return _confirmed_if(iban.is_valid(text))


@validator("us_ssn")
def _us_ssn(text: str) -> Verdict:
    # An SSN has no check digit: stdnum rejects never-issued areas, groups, serials and the
    # well-known advertising numbers, and what remains stays unsure.
    return Verdict.UNSURE if ssn.is_valid(text) else Verdict.REJECTED


@validator("ip")
def _ip(text: str) -> Verdict:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return Verdict.REJECTED
    # "::" is legal but says nothing. A valid address stays unsure: there is no checksum, and
    # a four-part version number is a valid dotted quad.
    if address.version == 6 and address.is_unspecified:
        return Verdict.REJECTED
    return Verdict.UNSURE


@validator("cn_mobile")
def _cn_mobile(text: str) -> Verdict:
    digits = _digits(text)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    # Mobile numbers have no check digit; an 11-digit run with an allocated prefix is
    # likely but not certain (order numbers can look the same).
    return Verdict.UNSURE if len(digits) == 11 and digits[1] in "3456789" else Verdict.REJECTED


def validate(name: str | None, text: str) -> Verdict:
    """Run the validator ``name`` (``None``: no validator, so unsure)."""
    if name is None:
        return Verdict.UNSURE
    return VALIDATORS[name](text)
