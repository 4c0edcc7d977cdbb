"""Detection: every type on positives and hard negatives, context, offsets, batching.

The scan looks for anchors and runs each pattern only over the clusters that hold its anchor;
``scan_exhaustive`` runs every pattern over the whole text. The tests below hold the two equal
on tricky inputs and on generated ones.
"""

# ruff: noqa: RUF001, RUF003  (full-width digits and punctuation are what these inputs test)

from __future__ import annotations

import random
import re

import pytest

from privacy import detect
from privacy.detect import Detector
from privacy.entities import (
    ANCHOR_TOKEN_START,
    CHECKSUMMED_TYPES,
    ENTITY_NAMES,
    ENTITY_TYPES,
    context_regex,
    skipping_context_regex,
)

DETECTOR = Detector()

# (text, type, matched substring): each must be found with exactly these offsets.
POSITIVES = [
    ("身份证号 11010519491231002X 已核验", "CN_RESIDENT_ID", "11010519491231002X"),
    ("id 440305199003071236", "CN_RESIDENT_ID", "440305199003071236"),
    ("手机13800138000联系", "CN_MOBILE", "13800138000"),
    ("call +86 139-0013-9000 now", "CN_MOBILE", "+86 139-0013-9000"),
    ("card 4111 1111 1111 1111 exp 09/27", "BANK_CARD", "4111 1111 1111 1111"),
    ("银联卡号6222021234567890128", "BANK_CARD", "6222021234567890128"),
    ("mc 5500-0000-0000-0004", "BANK_CARD", "5500-0000-0000-0004"),
    ("amex 3782 822463 10005", "BANK_CARD", "3782 822463 10005"),
    ("mail Zhang.Wei+x@mail.example.com.cn.", "EMAIL", "Zhang.Wei+x@mail.example.com.cn"),
    ("client 203.0.113.9 connected", "IP_ADDRESS", "203.0.113.9"),
    ("from 2001:db8::8a2e:370:7334 ok", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
    ("IBAN DE89 3704 0044 0532 0130 00 FROM ACME", "IBAN", "DE89 3704 0044 0532 0130 00"),
    ("pay GB82WEST12345698765432", "IBAN", "GB82WEST12345698765432"),
    ("SSN: 536-90-4399", "US_SSN", "536-90-4399"),
    ("social security 536904399", "US_SSN", "536904399"),
    ("统一社会信用代码91110000600037341L", "CN_USCC", "91110000600037341L"),
    ("护照号码 E12345678", "PASSPORT", "E12345678"),
    ("passport no. EA1234567", "PASSPORT", "EA1234567"),
    ("电话 010-62345678", "CN_LANDLINE", "010-62345678"),
    ("tel (0755)86001234 ext", "CN_LANDLINE", "(0755)86001234"),
]

# Look-alikes that must produce no finding at all.
HARD_NEGATIVES = [
    "订单号 20240516123456789012",  # 20-digit order number
    "ts 1712345678901 ms",  # 13-digit millisecond timestamp (starts with 1: no card network)
    "invoice 4111111111111112",  # Visa prefix, Luhn fails
    "id 11010519491231002Y",  # RIC with a letter that is not X
    "id 110105194912310021",  # RIC with a wrong check digit
    "id 110105194913310029",  # RIC with month 13
    "uscc 91110000600037341M",  # USCC with a wrong check character
    "ssn 000-12-3456 and 666-12-3456 and 078-05-1120",  # never issued / advertising
    "version v1.2.3.4 and 10.0.0.256 and 1.2.3.4.5",
    "time 12:30:45 and std::map and ::",
    "IBAN DE89 3704 0044 0532 0130 01",  # mod-97 fails
    "mobile 12800138000",  # no 12x mobile prefix
    "E12345678",  # passport-shaped code without context
    "name@localhost",  # no top-level domain
    "date 2024-05-16 13:45:12, price 1,234.56, qty 100000",
]


@pytest.mark.parametrize(("text", "entity", "expected"), POSITIVES)
def test_positive(text: str, entity: str, expected: str) -> None:
    findings = DETECTOR.scan(text)
    matched = [(f.type, text[f.start : f.end]) for f in findings]
    assert (entity, expected) in matched, matched


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negative(text: str) -> None:
    assert [(f.type, text[f.start : f.end]) for f in DETECTOR.scan(text)] == []


def test_every_type_has_a_positive() -> None:
    assert {entity for _, entity, _ in POSITIVES} == set(ENTITY_NAMES)


def test_checksummed_types_are_confirmed_at_full_score() -> None:
    for text, entity, _ in POSITIVES:
        if entity in CHECKSUMMED_TYPES:
            (finding,) = [f for f in DETECTOR.scan(text) if f.type == entity]
            assert finding.score == 1.0 and finding.verdict == "confirmed"


def test_context_word_raises_score_and_is_explained() -> None:
    (bare,) = DETECTOR.scan("13800138000")
    (framed,) = DETECTOR.scan("手机: 13800138000")
    assert framed.score > bare.score
    assert framed.context_word == "手机" and "context '手机'" in framed.explanation()


def test_context_words_need_word_edges_in_latin_text() -> None:
    (finding,) = DETECTOR.scan("hotel 13800138000")
    assert finding.context_word is None


def test_context_only_patterns_need_context() -> None:
    assert DETECTOR.scan("ref 536904399") == []


def test_overlap_keeps_the_confirmed_type() -> None:
    # An 18-digit RIC contains an 11-digit run that looks like a mobile: one finding only.
    assert [f.type for f in DETECTOR.scan("11010519491231002X")] == ["CN_RESIDENT_ID"]


def test_tie_between_confirmed_types_goes_to_priority() -> None:
    # Valid RIC that also passes Luhn with a Visa prefix: the ID wins (earlier in the registry).
    assert [f.type for f in DETECTOR.scan("440305199003071156")] == ["CN_RESIDENT_ID"]


def test_scan_many_equals_scan_per_text() -> None:
    texts = [text for text, _, _ in POSITIVES] + [None, ""] + HARD_NEGATIVES
    assert DETECTOR.scan_many(texts) == [tuple(DETECTOR.scan(t)) if t else () for t in texts]


def test_type_subset_and_threshold() -> None:
    text = "mail a@b.com 13800138000"
    assert [f.type for f in Detector(["EMAIL"]).scan(text)] == ["EMAIL"]
    assert [f.type for f in Detector(threshold=0.7).scan(text)] == ["EMAIL"]
    with pytest.raises(ValueError, match="unknown PII types: NOPE"):
        Detector(["NOPE"])


def test_json_shape_hides_text_unless_asked() -> None:
    text = "a@b.com"
    (finding,) = DETECTOR.scan(text)
    assert "text" not in finding.as_json()
    assert finding.as_json(text)["text"] == "a@b.com"
    assert finding.as_json()["start"] == 0 and finding.as_json()["end"] == 7


# -- the anchored scan against the exhaustive one -------------------------------------------

# Inputs where a cluster edge, an anchor or the ASCII view could go wrong.
TRICKY = [
    "13800138000,13900139000",  # adjacent mobiles, one separator
    "13800138000 13900139000",  # joined by a space into one cluster
    "4111111111111111-5500000000000004",  # two cards joined by a dash
    "a@b.com,c@d.org;e@f.net",  # adjacent e-mails
    "IBAN DE89370400440532013000 GB82WEST12345698765432",  # a word, then two IBANs
    "IBAN DE89 3704 0044 0532 0130 00 4111 1111 1111 1111",  # grouped IBAN, then a card
    "手机13800138000联系电话010-62345678身份证11010519491231002X",  # CJK on both sides
    "电话（0755）86001234，手机+86 139-0013-9000。",  # full-width punctuation
    "+8613800138000 008613900139000 86-13700137000",  # mobile prefixes
    "ssn 536-90-4399-1234 and 536-90-4399",  # SSN extended by a dash: only the second
    "ssn 536 90 4399",  # spaced SSN
    "v1.2.3.4 203.0.113.9. 10.0.0.1.5 8.8.8.8",  # dotted quads in versions and sentences
    "fe80::1 and ::1 and 2001:db8::8a2e:370:7334 and 12:30:45",
    "passport E12345678 EA1234567 G12345678",
    "uscc 91110000600037341L 9144030071526726XG",
    "E12345678@example.com 13800138000@example.cn",  # PII-looking local parts
    "卡号６２２２０２１２３４５６７８９０１２８",  # full-width digits
    "身份证１１０１０５１９４９１２３１００２X",  # full-width digits, ASCII check letter
    "ıd card 11010519491231002X",  # dotless i: the case-folding fallback
    "order 2024051612345678901234 ref 1712345678901",
    "x" * 50 + "4111111111111111",  # letters glued to a card: no match
    # A space before an anchor starts its cluster unless it stands between digits or capitals.
    " 4111111111111111 A 5500000000000004 a 378282246310005 9 4222222222222",
    "GB 82 WEST12345698765432 ES91 2100 0418 4502 0005 1332 1 536-90-4399",
    # Anchors inside a cluster: its start is found by looking back past joining spaces.
    "x 12 34 a@b.com AB 12 1.2.3.4 1  10.0.0.1 a 1 2 3.4.5.6 A B C 9 8.7.6.5",
    " 1.2.3.4 x@y.org 1 A@b.c",
]


@pytest.mark.parametrize("text", TRICKY)
def test_anchored_scan_equals_exhaustive_scan(text: str) -> None:
    assert DETECTOR.scan(text) == DETECTOR.scan_exhaustive(text)


def test_full_width_digits_are_read() -> None:
    text = "手机１３８００１３８０００，卡号６２２２０２１２３４５６７８９０１２８"
    found = [(f.type, text[f.start : f.end]) for f in DETECTOR.scan(text)]
    assert found == [
        ("CN_MOBILE", "１３８００１３８０００"),
        ("BANK_CARD", "６２２２０２１２３４５６７８９０１２８"),
    ]


def test_case_folding_fallback_matches_ignorecase() -> None:
    # Python's IGNORECASE takes "ı" for "i"; lower-casing does not, so such windows are
    # searched the slow way and report the word as written.
    (finding,) = DETECTOR.scan("ıd card 11010519491231002X")
    assert finding.context_word == "ıd card"


def test_skipping_context_regex_finds_every_case_of_a_first_letter() -> None:
    # Every code point that IGNORECASE takes for a word's first character (found by one
    # pass of the engine over all of them) starts a match of the skipping regex.
    every = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
    for entity in ENTITY_TYPES:
        fast = skipping_context_regex(entity)
        for word in entity.context:
            for first in re.findall(f"(?i:{re.escape(word[0])})", every):
                assert fast.search(f" {first}{word[1:]} "), (entity.name, word, first)


def test_skipping_context_regex_equals_ignorecase_regex() -> None:
    # The same word at the same place as context_regex, searched between two offsets, on
    # text built from the context words, their case variants, the characters IGNORECASE
    # folds (U+0130, U+0131, U+017F, U+212A) and letters around them.
    rng = random.Random(7)
    pieces = [" ", "x", "Z", "9", "-", "\u0130", "\u0131", "\u017f", "\u212a", "号", "\n"]
    for entity in ENTITY_TYPES:
        slow, fast = context_regex(entity), skipping_context_regex(entity)
        words = list(entity.context)
        for _ in range(400):
            parts = []
            for _ in range(rng.randint(1, 6)):
                word = rng.choice(words)
                word = "".join(c.upper() if rng.random() < 0.3 else c for c in word)
                word = word.replace("i", rng.choice("iI\u0130\u0131")).replace(
                    "s", rng.choice("sS\u017f")
                )
                parts.append(word.replace("k", rng.choice("kK\u212a")))
                parts.append("".join(rng.choice(pieces) for _ in range(rng.randint(0, 2))))
            text = "".join(parts)
            begin = rng.randint(0, len(text))
            end = rng.randint(begin, len(text))
            expected = slow.search(text, begin, end)
            found = fast.search(text, begin, end)
            assert (found and found.span(1)) == (expected and expected.span()), (text, begin, end)


def test_context_words_stay_within_their_text() -> None:
    # scan_many joins texts; a word that ends one text is no context for the next one's
    # match, and one chunk's case-folding exception (U+017F matches "s") leaves the other
    # texts' windows as they are.
    texts = ["my visa", "4111111111111111", "visa 4111111111111111", "ſsn 536-90-4399", "ssn"]
    found = DETECTOR.scan_many([*texts, "536-90-4399"])
    assert [[f.context_word for f in per_text] for per_text in found] == [
        [],
        [None],
        ["visa"],
        ["ſsn"],
        [],
        [None],
    ]
    assert found == [tuple(DETECTOR.scan_exhaustive(t)) for t in [*texts, "536-90-4399"]]


def _fragments(rng: random.Random) -> str:
    """A random piece of text: PII, look-alikes, digits, words, CJK, punctuation."""
    pii = [expected for _, _, expected in POSITIVES]
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(pii)
    if kind == 1:
        value = rng.choice(pii)
        i = rng.randrange(len(value))
        return value[:i] + rng.choice("0123456789 -.:") + value[i + 1 :]
    if kind == 2:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20)))
    if kind == 3:
        return ".".join(str(rng.randint(0, 300)) for _ in range(rng.randint(2, 5)))
    if kind == 4:
        return ":".join(format(rng.randint(0, 0xFFFF), "x") for _ in range(rng.randint(1, 8)))
    if kind == 5:
        return rng.choice(["ID card", "SSN", "passport", "tel", "IBAN", "email", "Zip", "hotel"])
    if kind == 6:
        return rng.choice(
            ["身份证号", "手机", "电话", "银行卡", "护照", "地址", "统一社会信用代码"]
        )
    if kind == 7:
        return "".join(rng.choice("ABEGXYZabcxyz") for _ in range(rng.randint(1, 4)))
    return rng.choice(["+86", "(0755)", "0086", "-", "@", "::", "Ｘ", "１３８"])


def test_anchored_scan_equals_exhaustive_scan_on_generated_text() -> None:
    rng = random.Random(4)
    found = 0
    for _ in range(3000):
        parts = [_fragments(rng) for _ in range(rng.randint(1, 6))]
        text = "".join(
            p + rng.choice(["", " ", "-", ",", "；", ".", ":", "/", "\n"]) for p in parts
        )
        fast = DETECTOR.scan(text)
        assert fast == DETECTOR.scan_exhaustive(text), text
        found += len(fast)
    assert found > 1000  # the generated texts hold PII, so equality is not vacuous


def test_scan_many_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small chunks put boundaries between most texts; offsets stay per text.
    monkeypatch.setattr(detect, "_CHUNK_CHARS", 64)
    texts = [text for text, _, _ in POSITIVES] + TRICKY + [None, ""] * 3
    assert DETECTOR.scan_many(texts) == [tuple(DETECTOR.scan(t)) if t else () for t in texts]


def test_type_subsets_equal_exhaustive_scan() -> None:
    text = " ".join(expected for _, _, expected in POSITIVES) + " " + " ".join(TRICKY)
    for name in ENTITY_NAMES:
        one = Detector([name])
        assert one.scan(text) == one.scan_exhaustive(text), name
        assert {f.type for f in one.scan(text)} == {name}


def test_anchors_start_with_a_plain_character() -> None:
    # The locator groups anchors by first character; a quantified first character would
    # match differently once split off (see PatternSpec).
    for entity in ENTITY_TYPES:
        for spec in entity.patterns:
            for alternative in detect._top_level_alternatives(spec.anchor):
                head = alternative[: alternative.index("]") + 1] if alternative[0] == "[" else ""
                first = head or alternative[: 2 if alternative[0] == "\\" else 1]
                after = alternative[len(first) : len(first) + 1]
                assert after not in ("{", "*", "+", "?"), (spec.name, alternative)


def test_locators_move_shared_literals_before_the_token_start_check() -> None:
    assert detect._token_start(0) == ANCHOR_TOKEN_START
    assert detect._shared_literal(["A00 ?[0A]{4}", "A00-0"]) == "A00"
    assert detect._shared_literal(["A00 ?", "A0{3}"]) == "A"  # a quantified 0 is no literal
    assert detect._shared_literal(["0{12}", "000"]) == ""
    assert detect._shared_literal([r"\.0", "a"]) == ""
    # The IBAN anchor alone: the engine skips to "AA00", and the check looks past it.
    ((iban, marked),) = Detector(["IBAN"])._locators
    assert not marked
    assert iban.pattern.startswith(b"AA00(?<![0Aa]....)")


def test_token_digits_are_marked_for_the_digit_locator() -> None:
    # A digit with no digit or letter before it starts a token: "1" in the marked view,
    # which the digit anchors read as a digit wherever a token may start inside them.
    assert detect._mark_token_digits(b"000 00a00A0 0.0#0-00") == b"100 10a00A0 1.1#1-10"
    assert detect._mark_token_digits(b"") == b""
    assert detect._with_token_digits(r"0[ -]0{1,7}(?![0Aa])\.0") == (
        r"[01][ -][01]{1,7}(?![01Aa])\.[01]"
    )
    (digits, marked), *_ = Detector(["US_SSN"])._locators
    assert marked and digits.pattern.startswith(b"100(?:")


def test_closed_clusters_write_every_space_that_joins_nothing_outside() -> None:
    # A space belongs to a cluster only between two digits or capitals (in the class view);
    # the closed view writes every other space "#", so clusters are the runs without "#".
    rng = random.Random(5)
    for _ in range(2000):
        classes = bytes(rng.choice(b"0Aa.:-@#   ") for _ in range(rng.randint(0, 12)))
        expected = bytes(
            ord("#")
            if char == ord(" ")
            and not (0 < i < len(classes) - 1 and {classes[i - 1], classes[i + 1]} <= set(b"0A"))
            else char
            for i, char in enumerate(classes)
        )
        assert detect._close_clusters(classes) == expected, classes


def test_clusters_with_several_matches_of_a_pattern() -> None:
    # A pattern's search goes on to the end of its cluster after a match that ends sooner.
    text = "13800138000 13900139000 4111 1111 1111 1111 5500 0000 0000 0004"
    found = [(f.type, text[f.start : f.end]) for f in DETECTOR.scan(text)]
    assert found == [
        ("CN_MOBILE", "13800138000"),
        ("CN_MOBILE", "13900139000"),
        ("BANK_CARD", "4111 1111 1111 1111"),
        ("BANK_CARD", "5500 0000 0000 0004"),
    ]
    assert DETECTOR.scan(text) == DETECTOR.scan_exhaustive(text)


def test_scan_many_resolves_overlaps_only_within_a_text() -> None:
    # Overlapping candidates (an ID that also passes as a card; a trimmed IBAN beside a
    # card) next to texts whose findings touch but do not overlap, and texts with none.
    texts = [
        "440305199003071156",
        "4111111111111111",
        "a@b.com 13800138000",
        "",
        "IBAN DE89 3704 0044 0532 0130 00 4111 1111 1111 1111",
        "440305199003071156 4111111111111111 440305199003071156",
        "no pii",
        "13800138000",
    ]
    assert DETECTOR.scan_many(texts) == [tuple(DETECTOR.scan_exhaustive(t)) for t in texts]
    assert [f.type for f in DETECTOR.scan_many(texts)[5]] == [
        "CN_RESIDENT_ID",
        "BANK_CARD",
        "CN_RESIDENT_ID",
    ]


def test_every_match_begins_after_no_letter_or_digit() -> None:
    # In a cluster of one token the scan tries a pattern only where the cluster begins
    # (detect._ONE_TOKEN), which needs this of every pattern: a match cannot begin right
    # after an ASCII letter or digit. Each match in the positives, the tricky inputs and
    # generated text, with a letter or digit put just before it, must not match there.
    rng = random.Random(6)
    texts = [text for text, _, _ in POSITIVES] + TRICKY
    texts += ["".join(_fragments(rng) + rng.choice(" -,.:") for _ in range(4)) for _ in range(800)]
    texts += ["01062345678", "passport 123456789", "E1234567８"]
    views = [detect._ascii_view(text)[0] for text in texts]
    for entity in ENTITY_TYPES:
        for spec in entity.patterns:
            regex = re.compile(spec.regex, re.ASCII)
            matches = [(view, match.start()) for view in views for match in regex.finditer(view)]
            assert matches, spec.name
            for view, start in matches:
                for char in "0aZ":
                    probe = view[:start] + char + view[start:]
                    assert regex.match(probe, start + 1) is None, (spec.name, view, char)


def test_shapes_of_one_token_are_marked() -> None:
    masks = Detector(["BANK_CARD"])._by_shape
    assert masks[b"0" * 16] & detect._ONE_TOKEN
    assert masks[b"Aa0000000000000000."] & detect._ONE_TOKEN  # the last may be punctuation
    assert not masks[b"0000 0000 0000 0000"] & detect._ONE_TOKEN
    assert not masks[b"a.0000000000000000"] & detect._ONE_TOKEN
    assert masks[b"0" * 16] & ~detect._ONE_TOKEN == 1  # card_plain, the first pattern
