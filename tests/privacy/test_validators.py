"""Validators: USCC structure (GB 32100, GB 11714), and the checks restated from stdnum held
equal to stdnum and ipaddress on random and edge-case inputs."""

from __future__ import annotations

import ipaddress
import random
import string

import pytest
from faker import Faker
from stdnum import iban, luhn
from stdnum.cn import uscc
from stdnum.es import ccc
from stdnum.iso7064 import mod_97_10
from stdnum.us import ssn

from privacy.validators import (
    USCC_CATEGORIES,
    Verdict,
    cn_division_known,
    gb11714_check_char,
    luhn_valid,
    mod97_valid,
    spanish_ccc_valid,
    uscc_check_char,
    validate,
)

# Published codes: stdnum's example and registered companies and banks (ICBC and Bank of
# China register nationally, region 100000). Each also passes two independent checks.
PUBLISHED_USCC = [
    "91110000600037341L",
    "91100000100003962T",
    "911000001000013428",
    "91330100799655058B",
    "9144030071526726XG",
    "91110108551385082Q",
]


def _with_check(body: str) -> str:
    """``body`` (17 characters) completed with its USCC check character (stdnum's)."""
    return body + uscc.calc_check_digit(body + "0")


def _organisation(body: str) -> str:
    return body + gb11714_check_char(body)


@pytest.mark.parametrize("code", PUBLISHED_USCC)
def test_published_uscc_are_confirmed(code: str) -> None:
    assert validate("cn_uscc", code) is Verdict.CONFIRMED


@pytest.mark.parametrize(
    "code",
    [
        _with_check("Y1110101" + _organisation("MA01A2B3")),  # other authority, letters
        _with_check("N2440305" + _organisation("12345678")),  # village collective
        _with_check("52100000" + _organisation("50000000")),  # national social organisation
        _with_check("93330106" + _organisation("MAXXXXXX")),  # farmers' cooperative
    ],
)
def test_valid_structures_with_letters_are_confirmed(code: str) -> None:
    # stdnum's is_valid wants eight digits first and would turn these away.
    assert validate("cn_uscc", code) is Verdict.CONFIRMED


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("94440305" + _organisation("25754802"), "the market regulator has no category 4"),
        ("Y2440305" + _organisation("25754802"), "other authority has only category 1"),
        ("B1440305" + _organisation("25754802"), "no authority B"),
        ("91240305" + _organisation("25754802"), "no province 24"),
        ("91101234" + _organisation("25754802"), "national is exactly 100000"),
        ("91440305" + "257548021", "organisation check character is 0, not 1"),
        ("914403052575480Z0", "Z is not a USCC character"),
    ],
)
def test_invalid_structure_with_a_correct_check_character_is_rejected(body: str, why: str) -> None:
    code = _with_check(body) if "Z" not in body else body + "0"
    if "Z" not in body:
        assert uscc.calc_check_digit(code) == code[-1]  # the check character alone passes
    assert validate("cn_uscc", code) is Verdict.REJECTED, why


def test_uscc_pattern_heads_are_the_validator_table() -> None:
    # entities.py spells out the authority/category pairs and provinces in the regex; the
    # two must agree with the validator's table and stdnum's provinces.
    from privacy.entities import ENTITY_REGISTRY

    pattern = ENTITY_REGISTRY["CN_USCC"].patterns[0].regex
    import re

    regex = re.compile(pattern, re.ASCII)
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for first in chars:
        for second in chars:
            code = _with_check(f"{first}{second}440305" + _organisation("25754802"))
            allowed = second in USCC_CATEGORIES.get(first, "")
            assert bool(regex.fullmatch(code)) == allowed, code
    for province in range(100):
        region = f"{province:02d}0000" if province != 10 else "100000"
        code = _with_check(f"91{region}" + _organisation("25754802"))
        assert bool(regex.fullmatch(code)) == cn_division_known(region), region


def test_gb11714_check_character() -> None:
    # Organisation codes inside the published USCCs above; X for 10, 0 for 11.
    assert gb11714_check_char("60003734") == "1"
    assert gb11714_check_char("71526726") == "X"
    assert gb11714_check_char("10000134") == "2"
    assert gb11714_check_char("00000000") == "0"  # 11


def test_random_18_digit_numbers_rarely_pass() -> None:
    # stdnum's check character alone passes about one in 31; the structure cuts that to
    # about one in 3000 (authority/category, province, organisation check).
    rng = random.Random(1)
    numbers = ["".join(rng.choice(string.digits) for _ in range(18)) for _ in range(30_000)]
    check_only = sum(uscc.is_valid(n) for n in numbers)
    confirmed = sum(validate("cn_uscc", n) is Verdict.CONFIRMED for n in numbers)
    assert 750 < check_only < 1200
    assert confirmed < 30


# -- restated checks against stdnum -----------------------------------------------------------


def test_luhn_equals_stdnum() -> None:
    rng = random.Random(2)
    for _ in range(20_000):
        digits = "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 25)))
        assert luhn_valid(digits) == luhn.is_valid(digits), digits


def test_uscc_check_character_equals_stdnum() -> None:
    rng = random.Random(5)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for _ in range(20_000):
        body = "".join(rng.choice(alphabet) for _ in range(17))
        assert uscc_check_char(body) == uscc.calc_check_digit(body + "0"), body


def test_mod97_equals_stdnum() -> None:
    rng = random.Random(3)
    alphabet = string.digits + string.ascii_letters + " -/"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 34)))
        assert mod97_valid(text) == mod_97_10.is_valid(text), text


def test_spanish_ccc_equals_stdnum() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        account = "".join(rng.choice(string.digits) for _ in range(20))
        # Half of them with check digits that pass, so both answers are exercised.
        if rng.random() < 0.5:
            account = account[:8] + ccc.calc_check_digits(account) + account[10:]
        assert spanish_ccc_valid(account) == ccc.is_valid(account), account
    # The IBAN validator passes the account compact: any other length or character is out.
    for text in ("2100041845020005133", "210004184502000513322", "2100041845020005133X"):
        assert not spanish_ccc_valid(text)


def test_iban_equals_stdnum() -> None:
    locales = ["de_DE", "en_GB", "fr_FR", "nl_NL", "es_ES", "it_IT", "nl_BE", "pl_PL", "no_NO"]
    rng = random.Random(4)
    for locale in locales:
        faker = Faker(locale)
        faker.seed_instance(5)
        for _ in range(60):
            value = faker.iban()
            i = rng.randrange(4, len(value))
            changed = value[:i] + rng.choice(string.digits) + value[i + 1 :]
            grouped = " ".join(value[j : j + 4] for j in range(0, len(value), 4))
            for text in (value, changed, grouped, value[:12], "XX" + value[2:], value.lower()):
                expected = Verdict.CONFIRMED if iban.is_valid(text) else Verdict.REJECTED
                assert validate("iban", text) is expected, text


def test_iban_of_digits_equals_mod97() -> None:
    # A BBAN of digits is checked with integer arithmetic; the answer must be mod97_valid's
    # over the rearranged number, half of the numbers with check digits that pass.
    rng = random.Random(8)
    for _ in range(5000):
        bban = "".join(rng.choice(string.digits) for _ in range(18))
        check = f"{98 - int(bban + '131400') % 97:02d}" if rng.random() < 0.5 else ""
        check = check or f"{rng.randint(0, 99):02d}"
        expected = Verdict.CONFIRMED if mod97_valid(bban + "DE" + check) else Verdict.REJECTED
        assert validate("iban", "DE" + check + bban) is expected, check + bban
    # Check digits outside ASCII are not read, as mod97_valid reads none (stdnum would).
    assert validate("iban", "DE٨٩370400440532013000") is Verdict.REJECTED


def test_iban_with_capitals_equals_mod97() -> None:
    # Capitals up to the last one are spelt out in digits and the rest read by int(); the
    # answer must be mod97_valid's. French BBANs take capitals anywhere in 11 places.
    rng = random.Random(9)
    for _ in range(5000):
        middle = "".join(rng.choice(string.digits + "AXZ") for _ in range(11))
        bban = "".join(rng.choice(string.digits) for _ in range(10)) + middle + "42"
        check = f"{rng.randint(0, 99):02d}"
        expected = Verdict.CONFIRMED if mod97_valid(bban + "FR" + check) else Verdict.REJECTED
        assert validate("iban", "FR" + check + bban) is expected, check + bban
        # Half of them with check digits that pass, so both answers are exercised.
        check = f"{98 - int(''.join(str(int(c, 36)) for c in bban + 'FR00')) % 97:02d}"
        assert validate("iban", "FR" + check + bban) is Verdict.CONFIRMED, check + bban


def test_ssn_equals_stdnum_and_reads_spaces() -> None:
    for area in ("000", "001", "078", "219", "457", "536", "666", "667", "899", "900", "999"):
        for group in ("00", "01", "05", "09", "55", "99"):
            for serial in ("0000", "0001", "1120", "5462", "9999"):
                expected = (
                    Verdict.UNSURE if ssn.is_valid(area + group + serial) else Verdict.REJECTED
                )
                for sep in ("-", "", " "):
                    assert validate("us_ssn", sep.join((area, group, serial))) is expected
    for text in ("53690439", "5369043999", "536-90-43990", "x536-90-4399"):
        assert validate("us_ssn", text) is Verdict.REJECTED


def test_ip_equals_ipaddress() -> None:
    rng = random.Random(6)
    hexdigits = "0123456789abcdefABCDEF"

    def expected(text: str) -> Verdict:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return Verdict.REJECTED
        unspecified = address.version == 6 and address.is_unspecified
        return Verdict.REJECTED if unspecified else Verdict.UNSURE

    for _ in range(4000):
        octets = [rng.choice([str(rng.randint(0, 300)), f"0{rng.randint(0, 99)}", "00"])[:3]]
        quad = ".".join(octets + [str(rng.randint(0, 260)) for _ in range(3)])
        groups = [
            "".join(rng.choice(hexdigits) for _ in range(rng.choice([0, 1, 2, 4, 4, 5])))
            for _ in range(rng.choice([7, 8, 8, 9]))
        ]
        # Compressed: "::" in place of a random run of groups (possibly all, or none left).
        cut = rng.randint(0, len(groups))
        compressed = ":".join(groups[:cut]) + "::" + ":".join(groups[cut + rng.randint(0, 2) :])
        clock = ":".join(f"{rng.randint(0, 99):02d}" for _ in range(rng.randint(2, 4)))
        tail = ":".join(groups[: rng.randint(0, 7)]) + rng.choice([":", "::"]) + quad
        for text in (quad, ":".join(groups), compressed, clock, tail):
            assert validate("ip", text) is expected(text), text
    edge_cases = ("::", "::1", "1::", "1::2::3", ":::", ":1::2", "1:2:3:4:5:6:7::", "::0:0")
    for text in (*edge_cases, "1::2:3:4:5:6:7:8", "::0.0.0.0", ":".join(["0"] * 8)):
        assert validate("ip", text) is expected(text), text


@pytest.mark.parametrize(
    ("number", "verdict"),
    [
        ("4111111111111111", Verdict.CONFIRMED),  # Visa, 16
        ("4222222222222", Verdict.CONFIRMED),  # Visa, 13
        ("440305199003071156", Verdict.REJECTED),  # 18 digits, Visa prefix, Luhn passes
        ("6222021234567890128", Verdict.CONFIRMED),  # UnionPay, 19
        ("378282246310005", Verdict.CONFIRMED),  # Amex, 15
        ("3782822463100050", Verdict.REJECTED),  # Amex prefix, 16 digits
        ("1712345678901", Verdict.REJECTED),  # timestamp: no network starts with 1
    ],
)
def test_card_networks_and_lengths(number: str, verdict: Verdict) -> None:
    if verdict is Verdict.REJECTED and number.startswith("44"):
        assert luhn.is_valid(number)  # rejected for its length, not its checksum
    assert validate("luhn_card", number) is verdict


def test_plain_card_pattern_admits_the_issued_prefixes_and_lengths() -> None:
    # entities.py spells out the card networks' prefixes and lengths in the card_plain
    # regex, so that numbers the validator would turn away are not candidates at all; the
    # two must agree on every four-digit prefix and length.
    import re

    from privacy.entities import ENTITY_REGISTRY
    from privacy.validators import _card_lengths

    (plain,) = [p for p in ENTITY_REGISTRY["BANK_CARD"].patterns if p.name == "card_plain"]
    regex = re.compile(plain.regex, re.ASCII)
    for prefix in map(str, range(1000, 10_000)):
        for length in range(12, 21):
            number = prefix + "7" * (length - 4)
            issued = 13 <= length <= 19 and length in _card_lengths(prefix)
            assert (regex.fullmatch(number) is not None) == issued, number


def test_iban_pattern_admits_the_registered_countries() -> None:
    # entities.py spells out the country codes of stdnum's IBAN registry in the IBAN regex,
    # so that codes the validator would turn away are not candidates; the two must agree on
    # every pair of capitals.
    import re
    from string import ascii_uppercase

    from privacy.entities import ENTITY_REGISTRY
    from privacy.validators import _iban_country

    (iban,) = ENTITY_REGISTRY["IBAN"].patterns
    regex = re.compile(iban.regex, re.ASCII)
    for first in ascii_uppercase:
        for second in ascii_uppercase:
            country = first + second
            admitted = regex.fullmatch(country + "12 3456 7890 1234 56") is not None
            assert admitted == (_iban_country(country) is not None), country


def test_ssn_patterns_admit_what_the_validator_does_not_turn_away() -> None:
    # entities.py rules never-issued areas, groups and serials out in the SSN regexes; the
    # published numbers are left to the validator.
    import re

    from privacy.entities import ENTITY_REGISTRY

    separators = {"ssn_dashed": "-", "ssn_spaced": " ", "ssn_bare": ""}
    for spec in ENTITY_REGISTRY["US_SSN"].patterns:
        regex = re.compile(spec.regex, re.ASCII)
        for area in (f"{i:03d}" for i in range(1000)):
            for group in ("00", "01", "55", "99"):
                for serial in ("0000", "0001", "1120", "5462", "9999"):
                    number = separators[spec.name].join((area, group, serial))
                    verdict = validate("us_ssn", number)
                    published = area + group + serial in ("078051120", "457555462", "219099999")
                    issued = verdict is not Verdict.REJECTED or published
                    assert (regex.fullmatch(number) is not None) == issued, number


def test_ipv6_pattern_leaves_out_only_what_the_validator_turns_away() -> None:
    # entities.py puts a lookahead before the IPv6 regex (eight groups, six and an IPv4 tail,
    # or "::"); without it the regex matches clock times, which the validator turns away.
    import re

    from privacy.detect import _CLASSES
    from privacy.entities import ENTITY_REGISTRY

    (spec,) = [p for p in ENTITY_REGISTRY["IP_ADDRESS"].patterns if p.name == "ipv6"]
    regex, anchor = re.compile(spec.regex, re.ASCII), re.compile(spec.anchor.encode())
    loose = re.compile(
        r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{1,4}:|:){2,7}"
        r"(?:[0-9A-Fa-f]{1,4}|:|(?:\d{1,3}\.){3}\d{1,3})(?![0-9A-Za-z:])",
        re.ASCII,
    )
    rng = random.Random(9)
    hexdigits = "0123456789abcdefABCDEF"
    for _ in range(20_000):
        groups = [
            "".join(rng.choice(hexdigits) for _ in range(rng.choice([0, 1, 2, 4, 4, 5])))
            for _ in range(rng.choice([2, 3, 5, 6, 7, 8, 8, 9]))
        ]
        cut = rng.randint(0, len(groups))
        quad = ".".join(str(rng.randint(0, 300)) for _ in range(4))
        for text in (
            ":".join(groups),
            ":".join(groups[:cut]) + "::" + ":".join(groups[cut + rng.randint(0, 2) :]),
            ":".join(f"{rng.randint(0, 99):02d}" for _ in range(rng.randint(2, 4))),
            ":".join(groups[: rng.randint(0, 7)]) + rng.choice([":", "::"]) + quad,
        ):
            matched = regex.fullmatch(text) is not None
            if matched:
                assert loose.fullmatch(text), text
                assert anchor.search(text.encode("ascii").translate(_CLASSES)), text
            elif loose.fullmatch(text):
                assert validate("ip", text) is Verdict.REJECTED, text
