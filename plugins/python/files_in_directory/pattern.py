"""The ``pattern`` config of files_in_directory: the glob subset of the Rust build
(plugins/files_in_directory/src/pattern.rs), matched on the UTF-8 bytes of a file's name.

Hand-written because the Rust build matches with the globset crate, which this guest does not have,
and ``fnmatch`` is not the same language (it matches characters, not bytes, and reads ``\\`` and
``{a,b}`` otherwise). ``compile`` refuses exactly what pattern.rs refuses, with the same reasons, and
the matcher agrees with globset on everything it accepts: keep the three builds in step.

- ``*`` any run of bytes (also none, also a leading ``.``); ``**`` is the same as ``*``;
- ``?`` exactly one byte (a non-ASCII character is 2 to 4 bytes);
- ``[abc]``, ``[a-z]`` one byte out of a set of ASCII characters; ``[!abc]`` or ``[^abc]`` one byte
  not in it. A ``]`` first in the set and a ``-`` first or last are literal;
- ``{a,b}`` either alternative (not nested, none empty);
- ``\\`` makes the next character literal; anything else is itself, case-sensitive.
"""

# Patterns longer than this (in UTF-8 bytes) are refused: it bounds the matching work.
MAX_LEN = 1024

_STAR = ("star",)
_ANY = ("any",)


class PatternError(ValueError):
    """Why a pattern is refused (the text after ``invalid pattern "...": ``)."""


def _literal(c):
    return [("byte", b) for b in c.encode("utf-8")]


def compile(pattern):  # noqa: A001 - the module's one entry point, as re.compile
    """The matcher for ``pattern``: a function from a file name to bool. Raises PatternError."""
    tokens = _parse(pattern)

    def matches(name):
        data = name.encode("utf-8")
        return len(data) in _advance(tokens, {0}, data)

    return matches


def _parse(pattern):
    if pattern == "":
        raise PatternError("it is empty")
    if len(pattern.encode("utf-8")) > MAX_LEN:
        raise PatternError("it is longer than 1024 bytes")
    if "/" in pattern:
        raise PatternError('it is matched against a file name, which never contains "/"')
    top = []
    group = None  # inside {...}: the alternatives so far, the last one being filled
    current = top
    i = 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "[":
            i, token = _parse_class(pattern, i)
            current.append(token)
        elif c == "{":
            if group is not None:
                raise PatternError('"{...}" groups cannot be nested')
            group = [[]]
            current = group[-1]
        elif c == "," and group is not None:
            if not current:
                raise PatternError('a "{...}" group has an empty alternative')
            group.append([])
            current = group[-1]
        elif c == "}":
            if group is None:
                raise PatternError('"}" has no "{" before it')
            if not current:
                raise PatternError('a "{...}" group has an empty alternative')
            top.append(("group", group))
            group = None
            current = top
        elif c == "\\":
            if i == len(pattern):
                raise PatternError('it ends with a lone "\\"')
            current.extend(_literal(pattern[i]))
            i += 1
        elif c == "*":
            current.append(_STAR)
        elif c == "?":
            current.append(_ANY)
        else:
            current.extend(_literal(c))
    if group is not None:
        raise PatternError('a "{" is never closed with "}"')
    return top


def _parse_class(pattern, i):
    """The class that starts after the ``[`` at ``pattern[i - 1]``: (index after its ``]``, token)."""
    negated = i < len(pattern) and pattern[i] in "!^"
    if negated:
        i += 1
    ranges = []
    first = True
    while True:
        if i >= len(pattern):
            raise PatternError('a "[" is never closed with "]"')
        c = pattern[i]
        i += 1
        if c == "]" and not first:
            return i, ("class", negated, ranges)
        first = False
        _check_class_char(c, pattern[i : i + 1])
        low = high = ord(c)
        # `c-d` is a range unless the `-` is last (then it is literal).
        if pattern[i : i + 1] == "-" and i + 1 < len(pattern) and pattern[i + 1] != "]":
            d = pattern[i + 1]
            i += 2
            _check_class_char(d, pattern[i : i + 1])
            if ord(d) < ord(c):
                raise PatternError('a "[...]" range ends before it starts')
            # globset would stretch the range to a second end (`[a-c-e]` is `[a-e]`): refused.
            if pattern[i : i + 1] == "-" and i + 1 < len(pattern) and pattern[i + 1] != "]":
                raise PatternError('a "[...]" range is followed by "-" (put a literal "-" last)')
            high = ord(d)
        ranges.append((low, high))


def _check_class_char(c, following):
    if ord(c) > 0x7F:
        # globset's classes match single bytes, so `[ü]` would match a part of `ü`.
        raise PatternError('a "[...]" class may hold only ASCII characters')
    if c == "\\":
        raise PatternError('a "[...]" class cannot hold "\\"')
    if c == "[" and following == ":":
        raise PatternError('POSIX classes such as "[:alpha:]" are not supported')


def _advance(tokens, positions, data):
    """The positions in ``data`` where ``tokens`` can end, starting from any of ``positions``: a set
    simulation, so that no pattern takes more than (pattern length x name length) steps."""
    n = len(data)
    for token in tokens:
        if not positions:
            break
        kind = token[0]
        if kind == "star":
            positions = set(range(min(positions), n + 1))
        elif kind == "any":
            positions = {p + 1 for p in positions if p < n}
        elif kind == "byte":
            positions = {p + 1 for p in positions if p < n and data[p] == token[1]}
        elif kind == "class":
            _, negated, ranges = token
            positions = {
                p + 1 for p in positions if p < n and any(lo <= data[p] <= hi for lo, hi in ranges) != negated
            }
        else:
            positions = set().union(*(_advance(alt, positions, data) for alt in token[1]))
    return positions
