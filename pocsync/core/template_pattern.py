"""The safe regular-expression subset of template patterns (PROTOCOL.md §18.3).  Pure.

A recursive-descent reader that judges a pattern, never matches anything: no backreferences, no
look-around, no nested quantifiers, a bounded number of quantifiers and repetitions.
"""

from __future__ import annotations

MAX_PATTERN = 200
MAX_QUANTIFIERS = 10
MAX_REPEAT = 1_000

META = frozenset("\\^$.|?*+()[]{}")
ESCAPABLE = META | frozenset("/")  # what ECMA-262 with the u flag lets one escape outside a class
CLASS_ESCAPABLE = ESCAPABLE | frozenset("-")
CLASS_ESCAPES = frozenset("dDwWsS")


class _PatternError(Exception):
    pass


class _Pattern:
    """Recursive-descent reader of the pattern grammar of PROTOCOL.md §18.3 (judges, never matches)."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.quantifiers = 0

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def take(self) -> str:
        c = self.s[self.i]
        self.i += 1
        return c

    def fail(self, message: str) -> _PatternError:
        return _PatternError(f"{message} at offset {self.i}")

    def whole(self) -> None:
        if self.peek() == "^":
            self.i += 1
        self.alternation(depth=0)
        if self.peek() == "$":
            self.i += 1
        if self.i != len(self.s):
            raise self.fail(f"unexpected {self.s[self.i]!r}")

    def alternation(self, depth: int) -> tuple[bool, bool]:
        """(holds a quantifier, holds an alternation)."""
        quant, alt = self.sequence(depth)
        while self.peek() == "|":
            self.i += 1
            alt = True
            q, a = self.sequence(depth)
            quant = quant or q
        return quant, alt

    def sequence(self, depth: int) -> tuple[bool, bool]:
        quant = alt = False
        while True:
            c = self.peek()
            if c is None or c in "|)":
                return quant, alt
            if c == "$":
                if depth == 0 and self.i == len(self.s) - 1:
                    return quant, alt
                raise self.fail("'$' is allowed only at the end")
            inner_quant, inner_alt = self.atom(depth)
            quant = quant or inner_quant
            alt = alt or inner_alt
            most = self.quantifier()
            if most is not None:
                if most > 1 and (inner_quant or inner_alt):
                    raise self.fail(
                        "a group repeated more than once must not hold a quantifier or '|' (nested quantifiers)"
                    )
                quant = True

    def atom(self, depth: int) -> tuple[bool, bool]:
        c = self.take()
        if c == "(":
            if self.peek() == "?":
                raise self.fail("'(?' groups (look-around, named, non-capturing) are not allowed")
            if depth >= 4:
                raise self.fail("groups nest at most 4 deep")
            res = self.alternation(depth + 1)
            if self.peek() != ")":
                raise self.fail("unclosed '('")
            self.i += 1
            return res
        if c == "[":
            self.char_class()
        elif c == "\\":
            self.escape(in_class=False)
        elif c == "^":
            raise self.fail("'^' is allowed only at the start")
        elif c in META and c != ".":
            raise self.fail(f"{c!r} must be escaped")
        return False, False

    def escape(self, *, in_class: bool) -> str | None:
        """The escaped character, or None for a class escape (\\d, \\w, ...)."""
        c = self.peek()
        if c is None:
            raise self.fail("a trailing '\\'")
        self.i += 1
        if c in CLASS_ESCAPES:
            return None
        allowed = CLASS_ESCAPABLE if in_class else ESCAPABLE
        if c in allowed:
            return c
        where = "" if in_class else "; \\- only inside [...]"
        raise self.fail(
            f"'\\{c}' is not an allowed escape (allowed: \\d \\D \\w \\W \\s \\S and \\ before one of "
            f"{''.join(sorted(allowed))}{where})"
        )

    def class_char(self) -> str | None:
        c = self.peek()
        if c is None:
            raise self.fail("unclosed '['")
        if c == "\\":
            self.i += 1
            return self.escape(in_class=True)
        if c == "[":
            raise self.fail("'[' inside a class must be escaped")
        self.i += 1
        return c

    def char_class(self) -> None:
        if self.peek() == "^":
            self.i += 1
        items = 0
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("unclosed '['")
            if c == "]":
                if items == 0:
                    raise self.fail("an empty class '[]'")
                self.i += 1
                return
            lo = self.class_char()
            items += 1
            if self.peek() == "-" and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                self.i += 1
                hi = self.class_char()
                if lo is None or hi is None:
                    raise self.fail("a range bound must be a single character")
                if ord(lo) > ord(hi):
                    raise self.fail(f"range {lo}-{hi} is out of order")

    def number(self) -> int:
        start = self.i
        while (c := self.peek()) is not None and c in "0123456789":
            self.i += 1
        digits = self.s[start : self.i]
        if not digits or len(digits) > 4:
            raise self.fail("a repetition count must be 1 to 4 digits")
        return int(digits)

    def quantifier(self) -> int | None:
        """The most repetitions the quantifier here allows (MAX_REPEAT + 1 for unbounded), or None."""
        c = self.peek()
        if c is None or c not in "?*+{":
            return None
        self.i += 1
        most = 1 if c == "?" else MAX_REPEAT + 1
        if c == "{":
            lo = self.number()
            hi = lo
            if self.peek() == ",":
                self.i += 1
                hi = self.number() if self.peek() != "}" else MAX_REPEAT
            if self.peek() != "}":
                raise self.fail("unclosed '{'")
            self.i += 1
            if lo > hi or hi > MAX_REPEAT:
                raise self.fail(f"a repetition {{m,n}} needs m <= n <= {MAX_REPEAT}")
            most = hi
        self.quantifiers += 1
        if self.quantifiers > MAX_QUANTIFIERS:
            raise self.fail(f"more than {MAX_QUANTIFIERS} quantifiers")
        nxt = self.peek()
        if nxt is not None and nxt in "?*+{":
            raise self.fail("a quantifier cannot follow a quantifier (no lazy or possessive forms)")
        return most


def pattern_problem(text: object) -> str | None:
    """Why ``text`` is not a pattern of the safe subset (PROTOCOL.md §18.3), or None."""
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_PATTERN:
        return f"must be a string of 1 to {MAX_PATTERN} characters"
    if any(not " " <= ch <= "~" for ch in text):
        return "must be printable ASCII"
    try:
        _Pattern(text).whole()
    except _PatternError as exc:
        return str(exc)
    return None
