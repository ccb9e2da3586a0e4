"""pfunc's JSON readers call the C scanner directly (the short texts a sandbox exchanges
at every host call): proven to give what json.loads gives, value or error, for any text."""

from __future__ import annotations

import json
import math

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
