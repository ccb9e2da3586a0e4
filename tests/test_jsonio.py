"""pfunc's JSON readers call the C scanner directly (the short texts a sandbox exchanges
at every host call): proven to give what json.loads gives, value or error, for any text."""

from __future__ import annotations

import json
import math
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pfunc import jsonio

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Valid JSON with something around it, or text that is hardly JSON at all.
padding = st.sampled_from(["", " ", "\n", "\t ", "x", ",", "]", "}", "\ufeff", "1"])
texts = (
    st.tuples(padding, values.map(json.dumps), padding).map("".join)
    | st.text(st.sampled_from('[]{}",:0123456789.eE+-truefalsnNaIiy \\u\n'), max_size=24)
    | st.text(max_size=12)
)

# No deadline and no speed check: a machine busy with the rest of the suite is slow, not
# wrong (a late example is not a different answer).
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(read, text):
    """What reading `text` gives: ("value", its JSON) or ("error", type, message)."""
    try:
        value = read(text)
    except (ValueError, RecursionError) as error:
        return ("error", type(error).__name__, str(error))
    if isinstance(value, float) and math.isnan(value):
        return ("value", "NaN")
    return ("value", json.dumps(value, sort_keys=True))


@SETTINGS
@given(texts)
@example("NaN")
@example("[1e999]")
@example(' {"a": 1} ')
@example('{"a": 1}{}')
@example("")
@example("[" * 5000 + "]" * 5000)
def test_plain_loads_is_json_loads(text):
    assert outcome(jsonio.plain_loads, text) == outcome(json.loads, text)


@SETTINGS
@given(texts)
@example("NaN")
@example("[1e999]")
@example("1" * 5000)
@example(' {"a": "\\ud800"} ')
def test_loads_reads_as_its_decoder_does(text):
    def decoder(text: str):  # jsonio.loads as it was: the decoder's own decode()
        value = jsonio._DECODER.decode(text)
        if "\\ud" in text or "\\uD" in text:
            jsonio.check(value)
        return value

    if text.startswith("\ufeff"):
        return  # refused before decoding, either way
    assert outcome(jsonio.loads, text) == outcome(decoder, text)


def same_meaning(ours, theirs) -> bool:
    """Equal as JSON readers take them: numbers as doubles, everything else exactly."""
    if isinstance(theirs, bool) or theirs is None or isinstance(theirs, str):
        return ours == theirs and type(ours) is type(theirs)
    if isinstance(theirs, int | float):
        return isinstance(ours, int | float) and float(ours) == float(theirs)
    if isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(same_meaning, ours, theirs))
    return ours.keys() == theirs.keys() and all(same_meaning(ours[k], theirs[k]) for k in theirs)


@SETTINGS
@given(values)
@example({"version": "v2.0", "n": 3.0, "tiny": 1e-07, 'say "1.0"': [1e21, -0.0]})
def test_dumps_means_what_json_dumps_means_and_writes_numbers_as_javascript(value):
    """Numbers as JSON.stringify writes them (3.0 is 3, 1e-07 is 1e-7), text untouched:
    a string that looks like a number ("v2.0") is never rewritten."""
    text = jsonio.dumps(value)
    assert same_meaning(json.loads(text), json.loads(json.dumps(value, ensure_ascii=False)))
    for found in re.finditer(r'"(?:[^"\\]|\\.)*"|-?[0-9][-0-9.eE+]*', text):
        token = found.group(0)
        if token.startswith('"'):
            continue
        # A number as String() writes it in JavaScript: no whole float's ".0", exponents
        # only past 1e21 or below 1e-6, and never with a leading zero.
        assert not re.fullmatch(r"-?[0-9]+\.0", token), token
        if "e" in token:
            assert not (1e-6 <= abs(float(token)) < 1e21), token
            assert "e-0" not in token and "e+0" not in token, token
