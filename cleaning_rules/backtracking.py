"""The static check for catastrophic backtracking, shared by ``steward rules lint`` (a warning a
steward reads) and the engine (a pattern it flags never leaves ``regex`` and its time limit,
``stdlib_re.py``)."""

from __future__ import annotations


def backtracking_risks(pattern: str, *, verbose: bool = False) -> list[str]:
    """Static signs of exponential backtracking in ``pattern`` (regex module syntax).

    Flags a group repeated without bound (``*``, ``+``, ``{n,}``) that itself contains an
    unbounded repeat (``(a+)+``, ``(a*)*``, ``(\\w+\\s?)*``), or alternatives that are the
    same text or repeats of one another (``(a|a)*``, ``(a|aa)+``). Possessive quantifiers
    (``++``) and atomic groups (``(?>…)``) cannot backtrack and are not flagged. It is a
    heuristic: it finds the classic shapes, not every slow pattern.
    """
    risks: list[str] = []
    # One frame per open group: its start, whether it is atomic, whether it holds an
    # unbounded repeat, and its alternatives as written.
    stack: list[tuple[int, bool, bool, list[str]]] = [(0, False, False, [""])]
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        start = i
        if verbose and char.isspace():
            i += 1
            continue
        if verbose and char == "#":
            while i < n and pattern[i] != "\n":
                i += 1
            continue
        if char == "\\":
            i = _skip_escape(pattern, i)
            token = pattern[start:i]
        elif char == "[":
            i = _skip_class(pattern, i)
            token = pattern[start:i]
        elif char == "(":
            atomic = pattern.startswith("(?>", i)
            if pattern.startswith("(?#", i):
                i = pattern.find(")", i) + 1 or n
                continue
            i, opens = _skip_group_prefix(pattern, i)
            if opens:
                stack.append((start, atomic, False, [""]))
                continue
            token = pattern[start:i]
        elif char == ")" and len(stack) > 1:
            open_at, atomic, inner, branches = stack.pop()
            i += 1
            quantifier_end = _quantifier_end(pattern, i)
            quantifier = pattern[i:quantifier_end]
            unbounded, possessive = _quantifier_kind(quantifier)
            group = pattern[open_at:i]
            if unbounded and not possessive and not atomic:
                if inner:
                    risks.append(f"nested quantifiers in {group}{quantifier}")
                elif _overlapping(branches):
                    risks.append(f"overlapping alternatives in {group}{quantifier}")
            i = quantifier_end
            _append(stack, group + quantifier, (inner or unbounded) and not atomic)
            continue
        elif char == "|":
            stack[-1][3].append("")
            i += 1
            continue
        else:
            i += 1
            token = char
        quantifier_end = _quantifier_end(pattern, i)
        unbounded, possessive = _quantifier_kind(pattern[i:quantifier_end])
        _append(stack, token + pattern[i:quantifier_end], unbounded and not possessive)
        i = quantifier_end
    return risks


def _append(stack: list[tuple[int, bool, bool, list[str]]], text: str, unbounded: bool) -> None:
    open_at, atomic, inner, branches = stack[-1]
    branches[-1] += text
    stack[-1] = (open_at, atomic, inner or unbounded, branches)


def _overlapping(branches: list[str]) -> bool:
    """Two alternatives that can split the same text in several ways: equal, or one a repeat
    of the other (``a`` and ``aa``)."""
    if len(branches) < 2:
        return False
    for x, a in enumerate(branches):
        for b in branches[x + 1 :]:
            short, long = sorted((a, b), key=len)
            if short and len(long) % len(short) == 0 and short * (len(long) // len(short)) == long:
                return True
    return False


def _skip_escape(pattern: str, i: int) -> int:
    """The index after the escape at ``i`` (``\\d``, ``\\p{Han}``, ``\\x{41}``, ``\\N{…}``)."""
    i += 2
    if i <= len(pattern) and pattern[i - 1] in "pPNxu" and pattern.startswith("{", i):
        close = pattern.find("}", i)
        return len(pattern) if close < 0 else close + 1
    return i


def _skip_class(pattern: str, i: int) -> int:
    """The index after the character class opening at ``i`` (nested sets included)."""
    depth = 0
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a ']' first in a class is a literal
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i = _skip_escape(pattern, i)
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    return i


def _skip_group_prefix(pattern: str, i: int) -> tuple[int, bool]:
    """The index after a group's opening (``(``, ``(?:``, ``(?P<name>``, ``(?<=``…) and True;
    or the index after a whole construct that opens no group (``(?i)``, ``(?P=name)``) and
    False."""
    if not pattern.startswith("(?", i):
        return i + 1, True
    if pattern.startswith(("(?P<", "(?<"), i) and not pattern.startswith(("(?<=", "(?<!"), i):
        close = pattern.find(">", i)
        return (len(pattern) if close < 0 else close + 1), True
    for prefix in ("(?<=", "(?<!", "(?:", "(?=", "(?!", "(?>", "(?|"):
        if pattern.startswith(prefix, i):
            return i + len(prefix), True
    # Inline flags, (?i) or (?i:…), and references such as (?P=name).
    j = i + 2
    while j < len(pattern) and pattern[j] not in ":)":
        j += 1
    return j + 1, j < len(pattern) and pattern[j] == ":"


def _quantifier_end(pattern: str, i: int) -> int:
    """The index after the quantifier at ``i`` (with its lazy ``?`` or possessive ``+``)."""
    if i >= len(pattern):
        return i
    if pattern[i] in "*+?":
        end = i + 1
    elif pattern[i] == "{":
        close = pattern.find("}", i)
        body = pattern[i + 1 : close] if close > 0 else ""
        if not body or not all(c.isdigit() or c == "," for c in body):
            return i  # a literal brace
        end = close + 1
    else:
        return i
    if end < len(pattern) and pattern[end] in "?+":
        end += 1
    return end


def _quantifier_kind(quantifier: str) -> tuple[bool, bool]:
    """(unbounded, possessive) for a quantifier as written; ``""`` is neither."""
    if not quantifier:
        return False, False
    possessive = len(quantifier) > 1 and quantifier.endswith("+")
    core = quantifier.rstrip("?+") if quantifier[0] == "{" else quantifier[0]
    if core in ("*", "+"):
        return True, possessive
    if core.startswith("{"):
        body = core.strip("{}")
        return body.endswith(","), possessive
    return False, possessive
