"""The condition filter language: yt-dlp's match filters, plus '||' and parentheses.

The reference is yt-dlp itself: every single-term filter is run through both
``parse_filter(s).matches`` and ``yt_dlp.utils.match_str`` and must agree.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yt_dlp.utils import match_str

from appliance.engine.filters import (
    MAX_DEPTH,
    MAX_LENGTH,
    Filter,
    FilterSyntaxError,
    parse_filter,
)

# yt-dlp raises on comparisons it cannot make (600 > 'abc', view_count *= 5, ...); a condition
# then simply does not match.
YTDLP_COMPARE_ERRORS = (TypeError, ValueError, AttributeError)

INFOS: list[dict[str, Any]] = [
    {  # a typical video
        "id": "abc123", "title": "Hello World", "duration": 700, "is_live": False,
        "was_live": False, "view_count": 1500, "like_count": 120, "filesize": 734_003_200,
        "filesize_approx": None, "uploader": "it's me", "description": "all about cats & dogs",
        "tags": ["music", "live"], "age_limit": 0, "upload_date": "20240315",
        "availability": "public",
    },
    {  # a live stream: no duration, counts as strings
        "id": "123", "title": "LIVE: The Stream", "duration": None, "is_live": True,
        "was_live": None, "view_count": "1000", "like_count": None, "filesize": 500 * 1024,
        "uploader": "Some Channel", "age_limit": 18, "upload_date": "20231231",
    },
    {},  # nothing extracted
    {  # floats, zeroes, None booleans
        "title": "short", "duration": 599.9, "filesize_approx": 1_500_000_000, "is_live": None,
        "view_count": 0, "like_count": 99.5, "description": "", "tags": [],
    },
    {  # everything as strings
        "id": "0123", "title": "", "duration": "700", "view_count": "50", "filesize": "1M",
        "is_live": "false", "age_limit": "18", "upload_date": "2024-01-01",
    },
    {  # bools where numbers are expected, and an hour-long video
        "title": "Ten minute tutorial", "duration": 3600, "filesize": 5 * 1024 * 1024,
        "is_live": 0, "was_live": True, "view_count": True, "like_count": 1_000_000,
        "description": None, "age_limit": 21, "availability": "unlisted",
    },
    {  # exactly on the boundaries
        "title": "hello world", "duration": 600, "filesize": 1_000_000, "view_count": 1000,
        "filesize_approx": 1_000_000_000, "like_count": 100, "is_live": False,
    },
]

# Valid for yt-dlp and for us; each must agree with match_str on every info dict above.
YTDLP_FILTERS = [
    "duration > 600",
    "duration >= 600",
    "duration < 600",
    "duration <= 600",
    "duration = 600",
    "duration != 600",
    "duration >? 600",
    "duration <? 60",
    "duration > ? 600",
    "duration>600",
    "duration > 10:00",
    "duration < 1h",
    "duration > 10m",  # yt-dlp reads '10m' as 10 MiB (filesize is tried before duration)
    "duration > '600'",
    "duration !> 600",
    "duration ! = 700",
    "duration > abc",  # yt-dlp raises: int > str
    "filesize > 500k",
    "filesize < 1M",
    "filesize >= 1.5G",
    "filesize >= 700MiB",
    "filesize_approx >? 1GB",
    "filesize <= 500KiB",
    "view_count > 1000",
    "view_count > 50",
    "view_count = 1000",
    "view_count *= 5",  # yt-dlp raises: a string operator with a number
    "like_count >? 100",
    "like_count < 100",
    "age_limit >= 18",
    "is_live",
    "!is_live",
    "! is_live",
    "was_live",
    "!was_live",
    "is_live = 1",
    "is_live != 0",
    "description",
    "!description",
    "title = Hello World",
    "title = 'Hello World'",
    'title = "Hello World"',
    "title != short",
    "title ^= Hello",
    "title $= World",
    "title *= lo Wo",
    "title !*= live",
    "title !^= LIVE",
    "title !$= Stream",
    "title ~= '(?i)live'",
    "title ~= ^H.*d$",
    "title !~= '(?i)live'",
    "title ~= (?i)^live",
    "title ~= '\\bWorld\\b'",
    "title ~= short|tutorial",
    "title *=? foo",
    "title !*=? short",
    "title > M",
    "title < M",
    "uploader = 'it\\'s me'",
    "uploader = Some Channel",
    "description *= 'cats \\& dogs'",
    "description ~= '(?i)\\bcats \\& dogs\\b'",
    "id = 123",
    "id = 0123",
    "id ^= 12",
    "id = abc123",
    "tags *= music",
    "tags ^= mu",  # yt-dlp raises: a list has no startswith
    "upload_date >= 20240101",
    "upload_date < 20240101",
    "availability = public",
    "title = Hello World & duration > 600",
    "!is_live & duration >? 300 & title ~= '(?i)hello'",
    "like_count >? 100 & description ~= '(?i)\\bcats \\& dogs\\b'",
]


def ytdlp_matches(source: str, info: dict[str, Any]) -> bool:
    """yt-dlp's verdict, with a comparison it cannot make counted as 'no match'."""
    try:
        return bool(match_str(source, info))
    except YTDLP_COMPARE_ERRORS:
        return False


@pytest.mark.parametrize("source", YTDLP_FILTERS)
def test_same_verdict_as_ytdlp(source: str) -> None:
    match_str(source, {})  # the filter itself is valid yt-dlp syntax
    parsed = parse_filter(source)
    for info in INFOS:
        assert parsed.matches(info) is ytdlp_matches(source, info), (source, info)


def test_the_table_is_not_trivial() -> None:
    """Every filter matches some info and fails another, or is a yt-dlp error case."""
    assert len(YTDLP_FILTERS) >= 40
    for source in YTDLP_FILTERS:
        verdicts = {parse_filter(source).matches(info) for info in INFOS}
        assert verdicts == {True, False} or ytdlp_raises_somewhere(source), source


def ytdlp_raises_somewhere(source: str) -> bool:
    for info in INFOS:
        try:
            match_str(source, info)
        except YTDLP_COMPARE_ERRORS:
            return True
    return False


# --- yt-dlp's semantics, spelled out --------------------------------------------------------


@pytest.mark.parametrize(("source", "info", "expected"), [
    ("duration > 600", {}, False),  # missing: no match ...
    ("duration >? 600", {}, True),  # ... unless '?'
    ("duration !=  600", {"duration": None}, False),  # negation does not cover missing
    ("title !*= x", {}, False),
    ("!is_live", {}, True),
    ("!is_live", {"is_live": 0}, False),  # '!field' means False or missing, not falsy
    ("is_live", {"is_live": 0}, True),
    ("view_count > 50", {"view_count": "100"}, False),  # a string field compares as text
    ("view_count > 50", {"view_count": 100}, True),
    ("filesize > 500k", {"filesize": 512_001}, True),  # 'k' is KiB to yt-dlp
    ("filesize > 500k", {"filesize": 512_000}, False),
    ("filesize >= 1.5G", {"filesize": 1_500_000_000}, True),
    ("duration > 10:00", {"duration": 601}, True),
    ("duration > 2h", {"duration": 7201}, True),
    ("title ~= '(?i)LIVE'", {"title": "a live show"}, True),
    ("title ~= LIVE", {"title": "a live show"}, False),
    ("title = 'it\\'s'", {"title": "it's"}, True),
    ('title = "say \\"hi\\""', {"title": 'say "hi"'}, True),
    ("title ~= '\\d+'", {"title": "part 12"}, True),  # other backslashes stay for the regex
    ("title = a\\&b", {"title": "a&b"}, True),
    # a backslash before a backslash is read alone, as yt-dlp reads it: both stay
    (r"title = 'a\\b'", {"title": r"a\\b"}, True),
    (r"title = 'x\\&y' & id = 1", {"title": r"x\&y", "id": 1}, True),
    (r"title = x\\&y", {"title": r"x\&y"}, True),  # and the '&' after it is still escaped
    ("uploader = Xavier X", {"uploader": "Xavier X"}, True),  # any first letter of a value
])
def test_semantics(source: str, info: dict[str, Any], expected: bool) -> None:
    assert parse_filter(source).matches(info) is expected


# --- the extensions -------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "info", "expected"), [
    ("duration < 60 || duration > 3600", {"duration": 30}, True),
    ("duration < 60 || duration > 3600", {"duration": 600}, False),
    ("duration < 60 || duration > 3600", {"duration": 4000}, True),
    # '&' binds tighter than '||': a & b || c  ==  (a & b) || c
    ("is_live & duration > 5 || title *= x", {"title": "x", "is_live": False}, True),
    ("is_live & (duration > 5 || title *= x)", {"title": "x", "is_live": False}, False),
    ("title *= x || is_live & duration > 5", {"title": "x"}, True),
    ("(title *= x || is_live) & duration > 5", {"title": "x"}, False),
    ("((duration > 5))", {"duration": 6}, True),
    ("( ( duration > 5 ) & ( !is_live ) )", {"duration": 6, "is_live": True}, False),
    ("(a || (b & (c || d)))", {"b": 1, "d": 1}, True),
    ("(a || (b & (c || d)))", {"b": 1}, False),
    ("(title ~= (?i)live)", {"title": "LIVE now"}, True),  # the value keeps its own parens
    ("(title = a (b))", {"title": "a (b)"}, True),
    ("(uploader = Some Channel)||is_live", {"uploader": "Some Channel"}, True),
    ("title = 'a & b' || title = 'c || d'", {"title": "c || d"}, True),
    ("title = 'a)' & title != '('", {"title": "a)"}, True),
    ("title = 'x|y'", {"title": "x|y"}, True),
    ("title = ''", {"title": ""}, True),
    ("title = ''", {"title": "''"}, False),
    ("yt:duration > 600", {"duration": 601}, True),
    ("!yt:is_live & yt:title", {"title": "t"}, True),
    ("channel.name = Foo", {"channel": {"name": "Foo"}}, True),
    ("formats.1.height >= 720", {"formats": [{"height": 360}, {"height": 1080}]}, True),
    ("formats.5.height >=? 720", {"formats": [{"height": 360}]}, True),
    ("formats.0.height.x", {"formats": [{"height": 360}]}, False),
    ("Title_2 = x", {"Title_2": "x"}, True),
])
def test_extensions(source: str, info: dict[str, Any], expected: bool) -> None:
    assert parse_filter(source).matches(info) is expected


def test_yt_dlp_crashes_are_no_match() -> None:
    for source in ("duration > abc", "view_count *= 5", "tags ^= a", "title ~= x"):
        info = {"duration": 5, "view_count": 15, "tags": ["a"], "title": ["x"]}
        with pytest.raises(YTDLP_COMPARE_ERRORS):
            match_str(source, info)
        assert parse_filter(source).matches(info) is False
        negated = source.replace(" ", " !", 1)
        assert parse_filter(negated).matches(info) is False


@given(a=st.sampled_from(YTDLP_FILTERS), b=st.sampled_from(YTDLP_FILTERS),
       c=st.sampled_from(YTDLP_FILTERS), info=st.sampled_from(INFOS))
def test_and_or_compose(a: str, b: str, c: str, info: dict[str, Any]) -> None:
    va, vb, vc = (parse_filter(s).matches(info) for s in (a, b, c))
    assert parse_filter(f"({a}) & ({b})").matches(info) is (va and vb)
    assert parse_filter(f"({a})||({b})").matches(info) is (va or vb)
    assert parse_filter(f"({a}) & ({b}) || ({c})").matches(info) is ((va and vb) or vc)
    assert parse_filter(f"({a}) || ({b}) & ({c})").matches(info) is (va or (vb and vc))


def test_fields_and_value_semantics() -> None:
    parsed = parse_filter("(yt:duration > 5 || !is_live) & channel.name ~= x & duration < 9")
    assert parsed.fields() == {"duration", "is_live", "channel.name"}
    parsed.fields().add("mutated")
    assert "mutated" not in parsed.fields()
    assert parsed.source.startswith("(yt:duration")
    assert parse_filter("a & b") == Filter("a & b")
    assert len({parse_filter("a"), parse_filter("a")}) == 1
    with pytest.raises(FilterSyntaxError):
        Filter("a &")


# --- syntax errors --------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "position", "message"), [
    ("", 0, "empty expression"),
    ("   ", 3, "empty expression"),
    ("()", 1, "expected a condition after '('"),
    ("(duration > 5", 0, "unbalanced '('"),
    ("((a) & b", 0, "unbalanced '('"),
    ("a & (b || c", 4, "unbalanced '('"),
    ("duration > 5)", 12, "unbalanced ')'"),
    ("(a) & b)", 7, "unbalanced ')'"),
    ("duration > 600 &", 16, "expected a condition after '&'"),
    ("duration > 600 ||", 17, "expected a condition after '||'"),
    ("a & || b", 4, "expected a condition after '&'"),
    ("& a", 0, "expected a condition"),
    ("|| a", 0, "expected a condition"),
    ("duration >", 10, "expected a value after '>'"),
    ("duration >=?", 12, "expected a value after '>='"),
    ("duration > & a", 11, "expected a value after '>'"),
    ("(duration > )", 12, "expected a value after '>'"),
    ("title ~= || a", 9, "expected a value after '~='"),
    ("a && b", 2, "'&&' is not an operator"),
    ("duration > 5 && b", 13, "'&&' is not an operator"),
    ("a | b", 2, "single '|'"),
    ("duration > 5 | is_live", 13, "single '|'"),
    ("title = 'abc", 8, "unterminated quote"),
    ('a & title = "abc\\"', 12, "unterminated quote"),
    ("title ~= '(?i' & a", 9, "invalid regular expression"),
    ("title ~= [a-", 9, "invalid regular expression"),
    ("(title ~= a(b & c)", 10, "invalid regular expression"),  # '&' always ends a value
    ("duration == 5", 9, "'==' is not an operator"),
    ("duration => 5", 9, "'=>' is not an operator"),
    ("title !== x", 6, "'!==' is not an operator"),
    ("!title = x", 7, "'!' only negates a bare field"),
    ("title ! x", 8, "expected an operator after '!'"),
    ("title = 'a' b", 12, "after a quoted value"),
    ("5 > a", 0, "expected a field name"),
    ("yt:", 3, "expected a field name after 'yt:'"),
    ("yt: duration > 5", 3, "expected a field name after 'yt:'"),
    ("duration.", 8, "unexpected '.'"),
    ("a b", 2, "unexpected 'b'"),
    ("(a b)", 3, "expected '&', '||' or ')'"),
    ("é > 1", 0, "expected a field name"),
    ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "nested deeper"),
    # read a character at a time on a request's thread: bounded before it is read at all
    ("a=1&" * (MAX_LENGTH // 4) + "a", MAX_LENGTH, "longer than 10,000 characters"),
])
def test_syntax_errors(source: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(source)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.position == position, error.message
    assert message in error.message
    assert error.message.endswith(f"at position {position}")
    assert str(error) == error.message


def test_nesting_up_to_the_limit_is_fine() -> None:
    source = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert parse_filter(source).matches({"a": 1})


def test_a_filter_as_long_as_the_limit_is_read() -> None:
    source = "a=1&" * (MAX_LENGTH // 4 - 1) + "abcd"
    assert len(source) == MAX_LENGTH
    assert parse_filter(source).matches({"a": 1, "abcd": True})
    assert not parse_filter(source).matches({"a": 2, "abcd": True})


# --- robustness -----------------------------------------------------------------------------

FILTER_ALPHABET = st.sampled_from(list(" ()!&|<>=~^$*?'\"\\ab_.:yt059kMG"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=8,
)
INFO_KEYS = st.sampled_from(["a", "b", "ab", "yt", "t", "_", "duration", "title", "is_live",
                             "view_count", "tags"])
INFO_DICTS = st.dictionaries(INFO_KEYS, JSON, max_size=5)


def parse_or_none(source: str) -> Filter | None:
    try:
        return parse_filter(source)
    except FilterSyntaxError as error:
        assert 0 <= error.position <= len(source)
        return None


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.text(max_size=40) | st.text(FILTER_ALPHABET, max_size=40), info=INFO_DICTS)
def test_random_text_only_raises_syntax_errors(source: str, info: dict[str, Any]) -> None:
    parsed = parse_or_none(source)
    if parsed is not None:
        assert parsed.matches(info) in (True, False)


SIMPLE_VALUES = st.sampled_from([
    "600", "0", "-5", "1.5", "500k", "1M", "1.5G", "2GiB", "10:00", "1:02:03", "1h", "10m",
    "abc", "Hello", "Hello World", "1e3", "0x10", "1_000", "true", "None", "123", "0123",
])
REGEXES = st.sampled_from(["(?i)hello", "^a", "o W", "\\d+", "x|y", "^$", "(?i)^live"])
FIELD_VALUES = (
    st.none() | st.booleans() | st.integers(-10, 10**10) | st.floats()
    | SIMPLE_VALUES | st.text(max_size=6) | st.lists(SIMPLE_VALUES, max_size=3)
)


@st.composite
def single_terms(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["duration", "title", "view_count", "is_live", "tags"]))
    negation = draw(st.sampled_from(["", "!", "! "]))
    op = draw(st.sampled_from(["*=", "^=", "$=", "~=", "<=", "<", ">=", ">", "="]))
    if op == "~=":
        value = draw(REGEXES)
    else:
        value = draw(SIMPLE_VALUES | st.from_regex(r"[A-Za-z0-9:.][A-Za-z0-9:. ]{0,5}",
                                                   fullmatch=True))
    quote = draw(st.sampled_from(["", "'", '"']))
    space = draw(st.sampled_from(["", " "]))
    none_inclusive = draw(st.sampled_from(["", "?", " ?"]))
    return f"{name}{space}{negation}{op}{none_inclusive}{space}{quote}{value}{quote}"


@settings(max_examples=1500)
@given(source=single_terms(), info=st.dictionaries(
    st.sampled_from(["duration", "title", "view_count", "is_live", "tags"]), FIELD_VALUES))
def test_random_terms_agree_with_ytdlp(source: str, info: dict[str, Any]) -> None:
    match_str(source, {})  # the generator only makes valid yt-dlp terms
    assert parse_filter(source).matches(info) is ytdlp_matches(source, info)


EXPRESSIONS = st.recursive(
    single_terms() | st.sampled_from(["is_live", "!is_live", "! yt:title", "a.b.0", "tags.1"]),
    lambda inner: (
        st.tuples(inner, st.sampled_from([" & ", "&", "||", " || "]), inner).map("".join)
        | inner.map(lambda source: f"( {source})")
    ),
    max_leaves=6,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(source=EXPRESSIONS, info=INFO_DICTS)
def test_generated_expressions_parse_and_never_raise(source: str, info: dict[str, Any]) -> None:
    assert parse_filter(source).matches(info) in (True, False)


def test_every_operator_and_negation_is_covered_by_the_table() -> None:
    ops = ["*=", "^=", "$=", "~=", "<=", "<", ">=", ">", "="]
    seen = {(op, neg) for op, neg in itertools.product(ops, ["", "!"])
            if any(f" {neg}{op} " in s or f" {neg}{op}? " in s for s in YTDLP_FILTERS)}
    assert {(op, "") for op in ops} <= seen
    assert {("*=", "!"), ("^=", "!"), ("$=", "!"), ("~=", "!")} <= seen


# --- the number readers: the worker's copy of yt-dlp's (engine/ytdlp_numbers.py) -----------

NUMBER_ALPHABET = "0123456789٣.,: \tPTZYMWDHSptzymwdhsKGEiBbkilobytesnuecr"
NUMBER_TEXT = st.text(NUMBER_ALPHABET, max_size=16) | st.from_regex(
    r"\A\d{1,4}([.,:]\d{1,3})?\s?(KiB|kB|Mb|gb|TB|bytes|mebibytes|min|minutes|hours|h|m|s)?\Z")


def _outcome(read: Any, text: str) -> Any:
    try:
        return read(text)
    except Exception as exc:  # a crash must be the same crash
        return type(exc)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(text=NUMBER_TEXT)
def test_the_number_readers_read_as_ytdlp(text: str) -> None:
    from yt_dlp.utils import parse_duration, parse_filesize

    from appliance.engine import ytdlp_numbers

    for ours, theirs in ((ytdlp_numbers.parse_filesize, parse_filesize),
                         (ytdlp_numbers.parse_duration, parse_duration)):
        assert _outcome(ours, text) == _outcome(theirs, text), (ours.__name__, text)


@pytest.mark.parametrize("text", ["500k", "500kB", "1.5GiB", "1,5 MB", "10:00", "1:02:03.5",
                                  "PT1H2M", "T", "ptz", "90 min", "2 hours", "5 yobibytes",
                                  "1e3", ". hours", "", "  ", "9" * 400 + "PB"])
def test_the_number_readers_on_known_forms(text: str) -> None:
    test_the_number_readers_read_as_ytdlp.hypothesis.inner_test(text=text)
