"""The PII types Steward detects, as data: patterns, base scores, context words, a validator.

Each entry follows Presidio's recognizer shape: a pattern finds candidates with a base score,
the named validator (``privacy/validators.py``) confirms or rejects a candidate, and context
words just before a match raise its score. The names here are the names that appear in
policy YAML, findings and the ledger.

Boundaries are written as ``(?<![0-9A-Za-z])`` rather than ``\\b``: in Python ``\\w`` includes
CJK characters, so ``\\b`` would miss ``手机13800138000``. Patterns are compiled with
``re.ASCII`` and run over an ASCII view of the text (``privacy/detect.py``), so ``\\d`` is
``[0-9]``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

_B = r"(?<![0-9A-Za-z])"  # no ASCII letter or digit before
_E = r"(?![0-9A-Za-z])"  # none after
# The same boundary checked after the first character: "(?<![0-9A-Za-z].)". A pattern that
# starts with a lookbehind gives Python's regex engine no first-character set, so it tries
# every position; starting with a character class lets it skip ahead (1.6x on digit-led
# patterns in bench/privacy_scan.py).
_B1 = r"(?<![0-9A-Za-z].)"
# Anchors (see PatternSpec) are over character classes: no digit or letter before the
# anchor's first character, checked after it for the same reason as _B1.
ANCHOR_TOKEN_START = r"(?<![0Aa].)"
_T = ANCHOR_TOKEN_START
# The rest of an SSN's area after its first digit (0-8), its group and its serial, none of
# them all zeros and the area not 666.
_SSN_AREA = r"\d{2}(?<!000|666)"
_SSN_GROUP = r"(?!00)\d{2}"
_SSN_SERIAL = r"(?!0000)\d{4}"
# The two letters just read are a country of stdnum's IBAN registry, which the validator
# looks up and turns away any other code by (the tests hold the two equal): tracking numbers
# such as SF353271408000 are then no candidates, at a fraction of what judging one costs.
_IBAN_COUNTRY = (
    "(?<=A[DELTZ]|B[AEGHIRY]|C[HRYZ]|D[EJKO]|E[EGS]|F[IKOR]|G[BEILRT]|H[NRU]|I[ELQST]|JO|K[WZ]"
    "|L[BCITUVY]|M[CDEKNRTU]|N[ILO]|OM|P[KLST]|QA|R[OSU]|S[ACDEIKMOTV]|T[LNR]|UA|V[AG]|XK|YE)"
)


@dataclass(frozen=True)
class PatternSpec:
    """One regex for an entity type.

    ``anchor`` is what every match of ``regex`` contains, written over character classes:
    each ASCII digit as ``0``, capital as ``A``, small letter as ``a``, punctuation as
    itself (``0{13}`` for 13 digits). The detector finds anchors first and runs ``regex``
    only where its anchor is (see ``privacy/detect.py``), so an anchor that some match lacks
    loses that match, and a loose one costs time; the tests check every anchor against the
    exhaustive scan. Each ``|`` alternative of an anchor starts with one plain character or
    a class of them (``0``, ``[0A]``, ``\\.``), followed by ``_T`` where the match starts a
    token: the detector joins the anchors into one regex grouped by first character, and
    Python's engine skips ahead quickly only when every alternative starts with a literal.
    Digits that every anchor of a group starts with are spelt out (``000{10,16}`` rather
    than ``0{12,18}``), and checks on what precedes the anchor come after them: the
    detector then looks for the shared literal (``000``), which passes over the short digit
    runs of dates, times and amounts instead of trying each of their digits.
    ``requires_context`` patterns are too generic to report alone (a bare 9-digit number is
    an SSN only if someone says so). ``trim`` retries a rejected match without its trailing
    space-separated groups, for formats written in groups that a following word can extend
    (IBAN).
    """

    name: str
    regex: str
    score: float
    anchor: str
    requires_context: bool = False
    trim: bool = False


@dataclass(frozen=True)
class EntityType:
    name: str
    patterns: tuple[PatternSpec, ...]
    context: tuple[str, ...]
    validator: str | None
    # Canonical form used for pseudonymisation, so that "138-0013-8000" in one source and
    # "+86 13800138000" in another give the same token and still join.
    normalize: Callable[[str], str]
    checksummed: bool = False


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _compact_upper(text: str) -> str:
    return "".join(text.split()).replace("-", "").upper()


def _mobile(text: str) -> str:
    digits = _digits(text)
    return digits[-11:]


def _ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


ENTITY_TYPES: tuple[EntityType, ...] = (
    # Order is priority: when two types claim the same span with the same score, the earlier
    # one wins (an 18-digit ID that also passes Luhn is an ID, not a card).
    EntityType(
        name="CN_RESIDENT_ID",
        patterns=(
            PatternSpec(
                "ric18",
                r"[1-9]" + _B1 + r"\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
                r"\d{3}[\dXx]" + _E,
                0.5,
                anchor="0" + _T + "0{16}[0Aa](?![0Aa])",
            ),
        ),
        context=("身份证", "证件号", "公民身份", "居民身份", "id card", "resident id", "identity"),
        validator="cn_ric",
        normalize=_compact_upper,
        checksummed=True,
    ),
    EntityType(
        name="CN_USCC",
        patterns=(
            # GB 32100: authority and category (the pairs validators.py accepts), a province
            # or national region, the organisation code, whose check character is a digit
            # or X, and the USCC check character.
            PatternSpec(
                "uscc",
                r"(?:1[1239]|2[19]|3[1-59]|4[19]|5[1239]|6[129]|7[129]|8[19]|9[123]|A[19]"
                r"|N[1239]|Y1)(?<![0-9A-Za-z]..)"
                r"(?:10|1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12])\d{4}"
                r"[0-9A-HJ-NPQRTUWXY]{8}[0-9X][0-9A-HJ-NPQRTUWXY]" + _E,
                0.4,
                anchor="[0A]" + _T + "[0A]0{6}[0A]{10}(?![0Aa])",
            ),
        ),
        context=("统一社会信用代码", "信用代码", "税号", "纳税人识别号", "uscc", "credit code"),
        validator="cn_uscc",
        normalize=_compact_upper,
        checksummed=True,
    ),
    EntityType(
        name="BANK_CARD",
        patterns=(
            # 13 to 19 digits, with the issuer prefixes and lengths of validators.py's table
            # (_card_lengths; the tests hold the two equal): Visa 4 (13, 16, 19), Mastercard
            # 2221-2720 and 51-55 (16), Amex 34, 37 (15), Diners 36, 38, 300-305 (14-19), JCB
            # 3528-3589, UnionPay 62, Discover 65, 6011, 644-649 (16-19). Most 18-digit
            # resident IDs and order numbers then fail here, at a fraction of what judging
            # a candidate costs, instead of in the validator. Grouped numbers start with 2-6
            # too, which keeps out the digit groups inside IBANs (GB17 KEMU 0181 5908 ...).
            PatternSpec(
                "card_plain",
                r"[2-6]" + _B1 + r"(?:(?<=4)\d{12}(?:\d{3}){0,2}"
                r"|(?<=2)(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
                r"|(?<=5)[1-5]\d{14}"
                r"|(?<=3)(?:[47]\d{13}|[68]\d{12,17}|0[0-5]\d{11,16}|5(?:2[89]|[3-8]\d)\d{12,15})"
                r"|(?<=6)(?:[25]\d{14,17}|011\d{12,15}|4[4-9]\d{13,16}))" + _E,
                0.4,
                anchor="0" + _T + "000{10,16}(?![0Aa])",
            ),
            PatternSpec(
                "card_grouped",
                r"[2-6]" + _B1 + r"\d{3}([ -])\d{4}\1\d{4}\1\d{1,7}" + _E,
                0.4,
                anchor="0" + _T + "000[ -]0000[ -]0000[ -]0{1,7}(?![0Aa])",
            ),
            PatternSpec(
                "card_amex",
                r"3" + _B1 + r"[47]\d{2}([ -])\d{6}\1\d{5}" + _E,
                0.4,
                anchor="0" + _T + "000[ -]000000[ -]00000(?![0Aa])",
            ),
        ),
        context=(
            "银行卡",
            "卡号",
            "信用卡",
            "借记卡",
            "card",
            "credit",
            "debit",
            "visa",
            "mastercard",
            "amex",
            "unionpay",
            "银联",
        ),
        validator="luhn_card",
        normalize=_digits,
        checksummed=True,
    ),
    EntityType(
        name="IBAN",
        patterns=(
            PatternSpec(
                "iban",
                r"[A-Z]" + _B1 + r"[A-Z]" + _IBAN_COUNTRY + r"\d{2}"
                r"(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + _E,
                0.4,
                anchor="A" + _T + "A00 ?[0A]{4} ?[0A]{4}",
                trim=True,
            ),
        ),
        context=("iban", "账户", "账号", "account", "bank", "konto"),
        validator="iban",
        normalize=_compact_upper,
        checksummed=True,
    ),
    EntityType(
        name="EMAIL",
        patterns=(
            PatternSpec(
                "email",
                r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
                r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}"
                r"(?![A-Za-z0-9-])",
                0.9,
                anchor="@",
            ),
        ),
        context=("邮箱", "电子邮件", "email", "e-mail", "mail"),
        validator=None,
        normalize=str.lower,
    ),
    EntityType(
        name="US_SSN",
        patterns=(
            # Areas 000, 666 and 9xx, group 00 and serial 0000 are never issued: validators.py
            # turns them away (and the published numbers), and these patterns do not match
            # them, so such numbers cost no candidate (the tests hold the two equal).
            PatternSpec(
                "ssn_dashed",
                r"[0-8](?<![0-9A-Za-z-].)"
                + _SSN_AREA
                + "-"
                + _SSN_GROUP
                + "-"
                + _SSN_SERIAL
                + r"(?![0-9A-Za-z-])",
                0.6,
                anchor="0" + _T + "00(?<!-...)-00-0000(?![0Aa-])",
            ),
            PatternSpec(
                "ssn_spaced",
                r"[0-8]" + _B1 + _SSN_AREA + " " + _SSN_GROUP + " " + _SSN_SERIAL + _E,
                0.3,
                anchor="0" + _T + "00 00 0000(?![0Aa])",
            ),
            PatternSpec(
                "ssn_bare",
                r"[0-8]" + _B1 + _SSN_AREA + _SSN_GROUP + _SSN_SERIAL + _E,
                0.2,
                anchor="0" + _T + "000{6}(?![0Aa])",
                requires_context=True,
            ),
        ),
        context=("ssn", "social security", "社会安全号", "社保号"),
        validator="us_ssn",
        normalize=_digits,
    ),
    EntityType(
        name="CN_MOBILE",
        patterns=(
            PatternSpec(
                "mobile",
                r"(?<![0-9A-Za-z+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _E,
                0.6,
                # Digits from a token start: 1xx, 86 1xx or 0086 1xx; or +86.
                anchor="0"
                + _T
                + "(?:0(?:00)?[ -]?0)?00[ -]?0000[ -]?0000(?![0Aa])"
                + r"|\+(?<![0Aa+].)00[ -]?000[ -]?0000[ -]?0000(?![0Aa])",
            ),
        ),
        context=("手机", "电话", "联系方式", "联系电话", "mobile", "phone", "cell", "tel"),
        validator="cn_mobile",
        normalize=_mobile,
    ),
    EntityType(
        name="CN_LANDLINE",
        patterns=(
            PatternSpec(
                "landline_sep",
                _B + r"(?:\(0\d{2,3}\)|0\d{2,3}[ -])[2-9]\d{6,7}" + _E,
                0.55,
                anchor="0" + _T + "0{6,7}(?![0Aa])",
            ),
            PatternSpec(
                "landline_plain",
                r"0" + _B1 + r"\d{2,3}[2-9]\d{6,7}" + _E,
                0.2,
                anchor="0" + _T + "0{9,11}(?![0Aa])",
            ),
        ),
        context=("电话", "座机", "固话", "传真", "tel", "phone", "landline", "fax"),
        validator=None,
        normalize=_digits,
    ),
    EntityType(
        name="IP_ADDRESS",
        patterns=(
            PatternSpec(
                "ipv4",
                r"\d(?<![0-9A-Za-z.].)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![0-9A-Za-z]|\.\d)",
                0.7,
                anchor=r"\.0{1,3}\.0{1,3}\.0",
            ),
            # An address has eight groups, or six and an IPv4 tail, or "::" (validators.py):
            # the lookahead leaves out what it would turn away whatever the digits, clock
            # times above all (12:30:45), and the anchor asks for "::" or five colons.
            PatternSpec(
                "ipv6",
                r"(?<![0-9A-Za-z:.])"
                r"(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]"
                r"|(?:[0-9A-Fa-f]{1,4}:){6}\d{1,3}\.)"
                r"(?:[0-9A-Fa-f]{1,4}:|:){2,7}"
                r"(?:[0-9A-Fa-f]{1,4}|:|(?:\d{1,3}\.){3}\d{1,3})(?![0-9A-Za-z:])",
                0.7,
                anchor=":(?::|[0Aa]{1,4}:[0Aa]{1,4}:[0Aa]{1,4}:[0Aa]{1,4}:)",
            ),
        ),
        context=("ip", "地址", "host", "client", "server", "remote"),
        validator="ip",
        normalize=_ip,
    ),
    EntityType(
        name="PASSPORT",
        patterns=(
            # People's Republic of China passports: E + 8 digits, or E + letter + 7 digits;
            # older G/D/S/P series. Without a context word these are just codes.
            PatternSpec(
                "cn_passport",
                r"[EGDSP]" + _B1 + r"(?:(?<=E)[0-9A-HJ-NP-Z]\d{7}|\d{8})" + _E,
                0.3,
                anchor="A" + _T + "[0A]0{7}(?![0Aa])",
            ),
            PatternSpec(
                "us_passport",
                r"\d" + _B1 + r"\d{8}" + _E,
                0.15,
                anchor="0" + _T + "000{6}(?![0Aa])",
                requires_context=True,
            ),
        ),
        context=("护照", "passport"),
        validator=None,
        normalize=_compact_upper,
    ),
)

ENTITY_REGISTRY: dict[str, EntityType] = {entity.name: entity for entity in ENTITY_TYPES}
ENTITY_NAMES: tuple[str, ...] = tuple(ENTITY_REGISTRY)
CHECKSUMMED_TYPES: tuple[str, ...] = tuple(e.name for e in ENTITY_TYPES if e.checksummed)


def context_regex(entity: EntityType) -> re.Pattern[str]:
    """One case-insensitive alternation of an entity's context words."""
    words = sorted(entity.context, key=len, reverse=True)
    return re.compile("|".join(_context_word(word) for word in words), re.IGNORECASE)


# The characters besides an ASCII letter's two cases that IGNORECASE takes for it: U+0130 and
# U+0131 for "i", U+017F for "s", the Kelvin sign U+212A for "k" (the tests check this against
# the engine over every code point).
_CASE_EXTRAS = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}


def skipping_context_regex(entity: EntityType) -> re.Pattern[str]:
    """``context_regex`` written so that Python's engine skips ahead: the same matches.

    Under IGNORECASE the engine tries every position against every word: it builds no set
    of first characters from cased letters. Here a plain class of every character that
    IGNORECASE takes for a word's first letter comes first, so the engine skips to those,
    and the words follow in a case-insensitive group, each checking the character the class
    read with a lookbehind. The whole match is group 1. Searched over the text itself
    between two offsets, it needs no lower-cased copy of a window.
    """
    words = sorted(entity.context, key=len, reverse=True)
    firsts = set()
    for word in words:
        first = word[0]
        firsts.update((first, first.lower(), first.upper(), *_CASE_EXTRAS.get(first.lower(), "")))
    alternatives = "|".join(_context_word(word, skipping=True) for word in words)
    head = "".join(re.escape(char) for char in sorted(firsts))
    return re.compile(f"([{head}](?i:{alternatives}))")


def _context_word(word: str, *, skipping: bool = False) -> str:
    # Latin words need edges ("ip" must not fire inside "zip", "tel" inside "hotel");
    # Chinese has no spaces between words, so a CJK word matches anywhere.
    first, rest = re.escape(word[0]), re.escape(word[1:])
    if skipping:
        # The first character is read already: checked by a lookbehind, the edge before it
        # looked for one character further back.
        edges = (r"(?<![A-Za-z].)", r"(?![A-Za-z])") if word.isascii() else ("", "")
        return f"(?<={first}){edges[0]}{rest}{edges[1]}"
    if not word.isascii():
        return re.escape(word)
    return r"(?<![A-Za-z])" + re.escape(word) + r"(?![A-Za-z])"
