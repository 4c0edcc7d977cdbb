"""Contract parties: the names a contract declares for its parties, replaced by placeholders.

A contract names each party once, in a declaration, and then mostly by role; a steward
preparing contracts as training or retrieval data wants the names gone everywhere and the
roles kept. Declarations are read from the text itself:

* 甲方：北京某某科技有限公司 (a role label, qualified or not: 甲方（出租方）：…, 出租方（甲方）：…);
* 北京某某科技有限公司（以下简称“甲方”）;
* Party A: Acme Ltd;
* Acme Software Ltd. (the "Licensor"), Beta Co., Ltd. (hereinafter referred to as "Party B").

Each declared name is then replaced wherever it occurs by the role's placeholder: 甲方, 乙方,
丙方, 丁方 and Party A–D by ``<PARTY_A>``…``<PARTY_D>``, an English defined term by its own
name (``<LICENSOR>``, ``<SERVICE_PROVIDER>``). A declaration without a name (甲方（盖章）：),
with a blank (____) or with a placeholder already is skipped, so the form is idempotent.
Punctuation is matched full-width and half-width alike: the common pack's NFKC rule may or may
not have run first.
"""

# Full-width punctuation is what these patterns read.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

import regex

from cleaning_rules.prefilter import Trigger

# Every declaration holds 方, "Party" or a double-quoted defined term.
DECLARATION_TRIGGER = Trigger(frozenset('方P"“'))
PLACEHOLDER_CHARS = frozenset("<>_ABCDEFGHIJKLMNOPQRSTUVWXYZ")

_ZH_ROLES = {"甲": "PARTY_A", "乙": "PARTY_B", "丙": "PARTY_C", "丁": "PARTY_D"}
# Where a name ends; 与, 和, 及 also join two names in one sentence (甲公司与乙公司).
_NAME_END = '\n,，;；。:：()（）“”"「」'
_JOINERS = "与和及、"
# Each pattern starts at a fixed, rare character (a role, a bracket, "Party"), so that a scan
# of a long contract tries it at few places; a name before a reference is then read backwards.
_ZH_LABELLED = regex.compile(
    # 甲方：…, 甲方（出租方）：…, or 出租方（甲方）：… (any Han label before the bracket)
    r"(?:(?P<role>[甲乙丙丁])方[ \t]*(?:[(（][^)）\n]{1,20}[)）])?"
    r"|(?<=\p{Han}[ \t]*)[(（][ \t]*(?:以下简称)?[ \t]*"
    r"[“\"「]?(?P<role>[甲乙丙丁])方[”\"」]?[ \t]*[)）])"
    r"[ \t]*[:：][ \t]*"
    rf"(?P<name>[^\s{_NAME_END}][^{_NAME_END}]{{0,59}}?)[ \t]*(?=[{_NAME_END}]|$)",
    regex.MULTILINE,
)
_ZH_REFERENCE = regex.compile(
    r"[ \t]*[(（][ \t]*(?:以下|下文)?简称[:：]?"
    # Not followed by a colon: 委托方（以下简称“甲方”）： labels the name that follows.
    r"[ \t]*[“\"「]?(?P<role>[甲乙丙丁])方[”\"」]?[ \t]*[)）](?![ \t]*[:：])"
)
_ZH_NAME_STOP = frozenset(_NAME_END + _JOINERS + " \t")
_MAX_NAME = 60
# An English company or person: capitalised words, small joining words, and a legal suffix
# after a comma (Beta Trading Co., Ltd.).
_NAME = (
    r"[A-Z][\w.&'-]*(?:[ ]+(?:[A-Z0-9&][\w.&'-]*|of|and|de|du))*"
    r"(?:,[ ]*(?:Ltd|Inc|LLC|Limited|Co)\.?)*"
)
_EN_LABELLED = regex.compile(
    rf"\bParty[ ]+(?P<role>[A-D])[ \t]*:[ \t]*(?P<name>{_NAME})[ \t]*(?=[\n,;(]|$)",
    regex.MULTILINE,
)
_EN_DEFINITION = regex.compile(
    r",?[ \t]*\((?:hereinafter(?:[ ]+referred[ ]+to[ ]+as)?|the)[ \t]+"
    r"[\"“](?P<term>[A-Z][A-Za-z]*(?:[ ][A-Z][A-Za-z]*)*)[\"”]\)"
)
_EN_NAME_AT_END = regex.compile(rf"(?<![\w.&'-])(?:{_NAME})\Z")
# Capitalised words that open a sentence rather than a name (Between Acme Ltd. (the …)).
_EN_LEADING = regex.compile(r"(?:(?:Between|Among|And|By|With|This|The|Made)[ ]+)+")
_PARTY_TERM = regex.compile(r"Party [A-D]")
_HAS_WORD = regex.compile(r"[\p{Han}\p{L}]")


# What a text declares: (shape, name, placeholder) in the order the shapes are read, the first
# declaration of a name winning. A shape reads one line at a time (no part of it crosses a line
# break), so a text declares what its lines declare, shape by shape: the engine reads each
# distinct line of a long contract once (``declarations`` on lines, then ``with_declared``).
Declaration = tuple[int, str, str]


def contract_parties(text: str) -> str:
    """``text`` with every declared party name replaced by its placeholder (see the module)."""
    return with_declared(text, declarations(text))


def declarations(text: str) -> tuple[Declaration, ...]:
    """The party declarations of ``text``, shape by shape, each shape in text order."""
    found_all: list[Declaration] = []

    def declare(shape: int, name: str, placeholder: str) -> None:
        name = name.strip()
        if name.startswith(("<", "_")) or _HAS_WORD.search(name) is None:
            return
        found_all.append((shape, name, f"<{placeholder}>"))

    # Each shape is looked for only where its fixed words are: most texts hold one shape.
    if "方" in text:
        for found in _ZH_LABELLED.finditer(text):
            declare(0, found.group("name"), _ZH_ROLES[found.group("role")])
    if "简称" in text:
        for found in _ZH_REFERENCE.finditer(text):
            start = end = found.start()
            while start > 0 and end - start < _MAX_NAME and text[start - 1] not in _ZH_NAME_STOP:
                start -= 1
            if end - start >= 2:
                declare(1, text[start:end], _ZH_ROLES[found.group("role")])
    if "Party" in text:
        for found in _EN_LABELLED.finditer(text):
            declare(2, found.group("name"), f"PARTY_{found.group('role')}")
    if "(" in text and ('"' in text or "“" in text):
        for found in _EN_DEFINITION.finditer(text):
            before = _EN_NAME_AT_END.search(text, max(0, found.start() - 120), found.start())
            if before is None:
                continue
            term = found.group("term")
            placeholder = f"PARTY_{term[-1]}" if _PARTY_TERM.fullmatch(term) else term
            name = before.group()
            opening = _EN_LEADING.match(name)
            declare(
                3, name[opening.end() :] if opening else name, placeholder.upper().replace(" ", "_")
            )
    return tuple(found_all)


def with_declared(text: str, declared: Iterable[Declaration]) -> str:
    """``text`` with each name of ``declared`` replaced by its placeholder. Declarations are
    taken shape by shape, each shape in the order given (the first declaration of a name
    wins), so the declarations of a text's lines, in line order, give what the text's do."""
    names: dict[str, str] = {}
    for _, name, placeholder in sorted(declared, key=itemgetter(0)):
        names.setdefault(name, placeholder)
    # Longest first: 北京某某科技有限公司 is replaced whole before a shorter name inside it.
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, names[name])
    return text
