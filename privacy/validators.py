"""Checksum and format validators, a registry keyed by the names entity definitions use.

A validator answers one of three things about a pattern match (Presidio's ``validate_result``
contract): it is confirmed (a checksum passed), rejected (a checksum or a structural rule
failed: a look-alike such as an order number), or the validator cannot tell.

python-stdnum is the reference. Its tables (IBAN formats per country, Chinese administrative
divisions) and its other checks (GB 11643, national IBAN checks) are called directly. The
checks that run on most candidates (Luhn, ISO 7064 mod 97-10, the USCC check character, the
Spanish account number's check digits, the SSN rules, address syntax) are restated here:
stdnum's versions first normalise Unicode one character at a time, which costs several times
the check itself, and the detector has already normalised the text. The tests hold each
restated check equal to stdnum (or ``ipaddress``) on random and edge-case inputs. GB 11714
(the organisation code inside a USCC) is here because stdnum has no module for it.
"""

from __future__ import annotations

import datetime
import ipaddress
import operator
import re
import string
from collections.abc import Callable
from enum import Enum
from functools import cache
from types import ModuleType
from typing import NamedTuple

from stdnum import numdb
from stdnum.cn import ric
from stdnum.util import get_cc_module


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
    if text.isdigit() and text.isascii():
        return text
    # Digits in groups (cards, phone numbers) are the common rest: two replacements cost a
    # third of the regex.
    compact = text.replace(" ", "").replace("-", "")
    return compact if compact.isdigit() and compact.isascii() else _NOT_DIGIT.sub("", text)


_NOT_DIGIT = re.compile(r"[^0-9]")


# The members as module globals: ``Verdict.CONFIRMED`` goes through the enum's metaclass, ten
# times the cost of a global, and the hot validators return one per candidate.
_CONFIRMED, _REJECTED, _UNSURE = Verdict.CONFIRMED, Verdict.REJECTED, Verdict.UNSURE


def _confirmed_if(ok: bool) -> Verdict:
    return _CONFIRMED if ok else _REJECTED


# -- checks restated from stdnum ---------------------------------------------------------------

# Each digit as the digit sum of its double (7 -> 14 -> 5), for the doubled positions.
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def luhn_valid(digits: str) -> bool:
    """The Luhn check over ASCII digits (``stdnum.luhn.is_valid``).

    Summed as bytes (each digit is its code point less 48), so the loop over digits runs in
    C; a sum of ``int`` per digit costs several times as much. Encoded once and doubled with
    ``bytes.translate``, a third cheaper than translating the string.
    """
    raw = digits.encode()
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_LUHN_DOUBLED))
    return (total - 48 * len(raw)) % 10 == 0


_BASE36_LETTERS = str.maketrans(
    {
        c: str(i)
        for letters in (string.ascii_uppercase, string.ascii_lowercase)
        for i, c in enumerate(letters, 10)
    }
)


def mod97_valid(number: str) -> bool:
    """ISO 7064 mod 97-10 over ASCII letters and digits (``stdnum.iso7064.mod_97_10``)."""
    if not number.isascii() or not number.isalnum():
        return False
    return int(number.translate(_BASE36_LETTERS)) % 97 == 1


# -- cards ---------------------------------------------------------------------------------


# Issuer prefixes of the networks we report (UnionPay, Visa, Mastercard, Amex, Discover, JCB,
# Diners), each with the lengths its cards are issued in. Luhn alone passes one random digit
# string in ten; a known prefix keeps 16-digit order numbers and 13-digit millisecond
# timestamps (which start with 1) out, and the lengths keep out 18-digit resident IDs whose
# region code looks like a Visa or Mastercard prefix (44..., 51...). Cached per four-digit
# prefix (at most 10,000), which is all the table reads.
@cache
def _card_lengths(prefix: str) -> range | tuple[int, ...]:
    if prefix[0] == "4":
        return (13, 16, 19)  # Visa
    two, three, four = int(prefix[:2]), int(prefix[:3]), int(prefix)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return (16,)  # Mastercard
    if two in (34, 37):
        return (15,)  # Amex
    if two in (62, 65) or four == 6011 or 644 <= three <= 649 or 3528 <= four <= 3589:
        return range(16, 20)  # UnionPay, Discover, JCB
    if two in (36, 38) or 300 <= three <= 305:
        return range(14, 20)  # Diners
    return ()


@validator("luhn_card")
def _luhn_card(text: str) -> Verdict:
    digits = _digits(text)
    length = len(digits)
    if not 13 <= length <= 19 or length not in _card_lengths(digits[:4]):
        return _REJECTED
    return _CONFIRMED if luhn_valid(digits) else _REJECTED


# -- Chinese resident IDs and unified social credit codes ---------------------------------------


@cache
def _cn_region_known(code: str) -> bool:
    # stdnum's table of administrative divisions; a few thousand codes, so the cache stays
    # small, and a lookup in stdnum's table costs far more than the rest of a validation.
    return any(props for _, props in numdb.get("cn/loc").info(code))


@validator("cn_ric")
def _cn_ric(text: str) -> Verdict:
    # GB 11643 check character, a real birth date and a region code stdnum knows. Not
    # ``ric.is_valid``: it also wants the region to have existed in the birth year, but IDs
    # issued after a redistricting carry the new code with an older birth date, so real IDs
    # fail it (Nanshan, 440305, created 1990, holds people born in the 1950s).
    number = text.upper()
    if len(number) != 18 or not number[:17].isdigit():
        return _REJECTED
    if ric.calc_check_digit(number) != number[-1]:
        return _REJECTED
    try:
        datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return _REJECTED
    return _confirmed_if(_cn_region_known(number[:6]))


# GB 32100-2015, table 1: the registration authority (first character) and the categories
# (second character) it registers. 9 is the market regulator (1 companies, 2 sole traders,
# 3 farmers' cooperatives); 1 government bodies and public institutions; 5 civil affairs
# (social organisations, foundations); N agriculture; Y other. The CN_USCC pattern in
# entities.py spells out the same pairs.
USCC_CATEGORIES = {
    "1": "1239",
    "2": "19",
    "3": "123459",
    "4": "19",
    "5": "1239",
    "6": "129",
    "7": "129",
    "8": "19",
    "9": "123",
    "A": "19",
    "N": "1239",
    "Y": "1",
}
_USCC_CHARS = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")
# Weights of the GB 11714 organisation code check character.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def gb11714_check_char(body: str) -> str:
    """The check character of a GB 11714 organisation code from its 8-character body.

    Digits count as themselves and capitals as 10 (A) to 35 (Z); the check is 11 minus the
    weighted sum mod 11, written X for 10 and 0 for 11. ``body`` must be digits and capitals.
    """
    total = sum(map(operator.mul, body.encode().translate(_BASE36_VALUES), _ORG_WEIGHTS))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Each character's value as a byte, so that a code's values are one ``bytes.translate``
# (in C) rather than a lookup per character; the callers have checked the characters.
_BASE36_VALUES = bytes.maketrans(
    (string.digits + string.ascii_uppercase).encode(), bytes(range(36))
)
_USCC_VALUES = bytes.maketrans(_USCC_ALPHABET.encode(), bytes(range(31)))


def uscc_check_char(body: str) -> str:
    """The USCC check character of the first 17 characters (``stdnum.cn.uscc``).

    ``body`` must be USCC characters (``_USCC_CHARS``).
    """
    total = sum(map(operator.mul, body[:17].encode().translate(_USCC_VALUES), _USCC_WEIGHTS))
    return _USCC_ALPHABET[-total % 31]


@cache
def cn_division_known(code: str) -> bool:
    """Whether a USCC region code is national (100000) or in a province stdnum knows.

    Counties are not required: development zones register under codes that are not
    administrative divisions. State-owned banks register nationally (91100000100003962T).
    """
    if code == "100000":
        return True
    return any("province" in props for _, props in numdb.get("cn/loc").info(code))


@validator("cn_uscc")
def _cn_uscc(text: str) -> Verdict:
    # Beyond stdnum's check character (which one random 18-digit number in 31 passes): the
    # authority and category codes of GB 32100, a known province or national region code,
    # and the embedded GB 11714 organisation code with its own check character (chars 9-17).
    number = text.upper()
    if len(number) != 18 or number[1] not in USCC_CATEGORIES.get(number[0], ""):
        return _REJECTED
    region, organisation = number[2:8], number[8:17]
    if not region.isdigit() or not cn_division_known(region):
        return _REJECTED
    if not set(organisation) <= _USCC_CHARS or number[-1] not in _USCC_CHARS:
        return _REJECTED
    if gb11714_check_char(organisation[:8]) != organisation[8]:
        return _REJECTED
    # Not ``uscc.is_valid``: it wants eight digits first, which turns away the letter
    # authorities (A, N, Y).
    return _confirmed_if(uscc_check_char(number) == number[-1])


# -- IBAN ----------------------------------------------------------------------------------


class _IbanCountry(NamedTuple):
    bban: re.Pattern[str]  # the BBAN's format
    national: Callable[[str], bool] | None  # the national check, where stdnum has one
    letters: int | None  # the country code as mod 97 reads it ("DE": 1314), if ASCII letters


@cache
def _iban_country(country: str) -> _IbanCountry | None:
    # stdnum's per-country IBAN table keys on the country code alone, so its answer (the
    # BBAN format and any national check) is looked up once per country.
    props = numdb.get("iban").info(country)[0][1]
    if not props:
        return None
    bban = _IBAN_STRUCTURE.sub(
        lambda m: f"{_IBAN_CHARS[m.group(2)]}{{{m.group(1)}}}", props.get("bban", "")
    )
    national = _IBAN_NATIONAL.get(country)
    if national is None:
        module: ModuleType | None = get_cc_module(country.lower(), "iban")
        national = module.is_valid if module else None
    ascii_letters = country.isascii() and country.isalpha()
    letters = int(country.translate(_BASE36_LETTERS)) if ascii_letters else None
    return _IbanCountry(re.compile(bban), national, letters)


# Weights of the Spanish account number's check digits: 2**i mod 11.
_CCC_WEIGHTS = (1, 2, 4, 8, 5, 10, 9, 7, 3, 6)


# The first check digit weighs "00" and the bank and branch (8 digits): the zeros add nothing.
_CCC_BRANCH_WEIGHTS = _CCC_WEIGHTS[2:]
# What the code points of "0" add to each weighted sum, taken off again.
_CCC_BRANCH_ZERO = 48 * sum(_CCC_BRANCH_WEIGHTS)
_CCC_ACCOUNT_ZERO = 48 * sum(_CCC_WEIGHTS)
# A check digit by the weighted sum mod 11: 11 less the remainder, 0 and 1 as they are.
_CCC_CHECK_DIGITS = "01" + "".join(str(11 - remainder) for remainder in range(2, 11))


def spanish_ccc_valid(account: str) -> bool:
    """The two check digits of a 20-digit Spanish account number (``stdnum.es.ccc``).

    Weighted over code points (no ``int()`` per digit), both sums in one call.
    """
    if len(account) != 20 or not account.isdigit() or not account.isascii():
        return False
    raw = account.encode()
    branch = (sum(map(operator.mul, raw[:8], _CCC_BRANCH_WEIGHTS)) - _CCC_BRANCH_ZERO) % 11
    number = (sum(map(operator.mul, raw[10:], _CCC_WEIGHTS)) - _CCC_ACCOUNT_ZERO) % 11
    return account[8:10] == _CCC_CHECK_DIGITS[branch] + _CCC_CHECK_DIGITS[number]


# stdnum's Spanish IBAN module validates the whole IBAN again before checking the account
# number (CCC), and its CCC check normalises the text first: the check digits alone are what
# it adds, restated above at a twentieth of the cost.
_IBAN_NATIONAL: dict[str, Callable[[str], bool]] = {
    "ES": lambda number: spanish_ccc_valid(number[4:])
}


_DIGITS = string.digits
# Each ASCII digit and capital as mod 97 reads it: the digit, or the capital's two digits.
_DECIMAL_OF = {
    char: str(value) for value, char in enumerate(string.digits + string.ascii_uppercase)
}.__getitem__
_IBAN_STRUCTURE = re.compile(r"([1-9][0-9]*)!([nac])")
_IBAN_CHARS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}


@validator("iban")
def _iban(text: str) -> Verdict:
    # ``stdnum.iban.is_valid`` step by step: the country's BBAN format, mod 97, then its
    # national check where stdnum has one. The format first: it is a cached lookup and a
    # regex, and turns away codes such as tracking numbers (SF...) before the arithmetic.
    number = text.replace(" ", "").replace("-", "").replace(".", "").upper()
    if len(number) < 5:
        return _REJECTED
    country = _iban_country(number[:2])
    if country is None or not country.bban.fullmatch(number, 4):
        return _REJECTED
    bban, check = number[4:], number[2:4]
    if country.letters is not None and check.isdigit() and check.isascii():
        # mod 97 of the rearranged number (BBAN, country, check digits) as integers. The
        # format made the BBAN ASCII digits and capitals, most often digits after a few
        # capitals (GB, NL, IT): the part up to the last capital is spelt out in digits
        # (A = 10), the rest read by int() as it is, instead of translating every character.
        if not bban.isdigit():
            spelt = len(bban.rstrip(_DIGITS))
            bban = "".join(map(_DECIMAL_OF, bban[:spelt])) + bban[spelt:]
        valid = (int(bban) * 1_000_000 + country.letters * 100 + int(check)) % 97 == 1
    else:
        valid = mod97_valid(bban + number[:4])
    if not valid:
        return _REJECTED
    national = country.national
    return _REJECTED if national is not None and not national(number) else _CONFIRMED


# -- US SSN --------------------------------------------------------------------------------

_SSN = re.compile(r"([0-9]{3})[- ]?([0-9]{2})[- ]?([0-9]{4})")
# Numbers published in advertising and on sample cards (stdnum's list).
_SSN_PUBLISHED = frozenset(("078051120", "457555462", "219099999"))


@validator("us_ssn")
def _us_ssn(text: str) -> Verdict:
    # An SSN has no check digit: never-issued areas (000, 666, 9xx), groups (00) and serials
    # (0000) and the published numbers are rejected, as stdnum does, and what remains stays
    # unsure. Unlike stdnum, groups separated by spaces are read too.
    match = _SSN.fullmatch(text.strip())
    if match is None:
        return _REJECTED
    area, group, serial = match.groups()
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return _REJECTED
    return _REJECTED if area + group + serial in _SSN_PUBLISHED else _UNSURE


# -- IP addresses --------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_HEX_GROUPS = r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*"
_FULL_IPV6 = re.compile(r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}")
# Groups on either side of one "::" (that there are at most seven is checked in code).
_COMPRESSED_IPV6 = re.compile(rf"(?:{_HEX_GROUPS})?::(?:{_HEX_GROUPS})?")


def _ipv6_without_ipv4_tail(text: str) -> bool:
    """Whether ``text`` (no dot in it) is an IPv6 address, as ``ipaddress`` would say."""
    if _FULL_IPV6.fullmatch(text):
        return True
    # "::" stands for at least one group, so at most seven are written: one per colon,
    # less one where "::" opens or closes the address.
    groups = text.count(":") - text.startswith("::") - text.endswith("::")
    return groups <= 7 and _COMPRESSED_IPV6.fullmatch(text) is not None


@validator("ip")
def _ip(text: str) -> Verdict:
    # Decided here at a fraction of ipaddress's cost (and of the exception it raises for
    # every clock time such as 12:30:45): a dotted quad (octets 0-255 without leading
    # zeros), and IPv6 without an IPv4 tail, in full or around one "::". An IPv4 tail goes
    # to ipaddress. A valid address stays unsure: there is no checksum, and a four-part
    # version number is a valid dotted quad.
    if ":" not in text:
        return _UNSURE if _DOTTED_QUAD.fullmatch(text) else _REJECTED
    if "." in text:
        try:
            unspecified = ipaddress.ip_address(text).is_unspecified
        except ValueError:
            return _REJECTED
    elif _ipv6_without_ipv4_tail(text):
        unspecified = not text.replace(":", "").strip("0")
    else:
        return _REJECTED
    # "::" is legal but says nothing.
    return _REJECTED if unspecified else _UNSURE


# -- Chinese mobile numbers ----------------------------------------------------------------


@validator("cn_mobile")
def _cn_mobile(text: str) -> Verdict:
    digits = _digits(text)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    # Mobile numbers have no check digit; an 11-digit run with an allocated prefix is
    # likely but not certain (order numbers can look the same).
    return _UNSURE if len(digits) == 11 and digits[1] in "3456789" else _REJECTED


def validate(name: str | None, text: str) -> Verdict:
    """Run the validator ``name`` (``None``: no validator, so unsure)."""
    if name is None:
        return _UNSURE
    return VALIDATORS[name](text)
