"""Known answers for the built-in modules, cross-checked against Python oracles.

The synchronous modules are JavaScript in the sandbox (pfunc/sandbox/builtins.js); these
tests run them in the real engine and compare with hashlib, uuid and PyJWT.
"""

from __future__ import annotations

import json
import random
import uuid as pyuuid
from typing import Any

import jwt as pyjwt
import pytest


def evaluate(harness, write_handler, body: str, message: Any = None) -> Any:
    """Run `body` (JS statements ending in `return value;`) in a handler; return the value."""
    handler = write_handler(
        "const jwt = require('jwt'); const uuid = require('uuid');\n"
        "const b64 = require('codec/base64'); const auth = require('codec/auth');\n"
        "const qs = require('codec/query_string'); const jp = require('jsonpath');\n"
        "const maths = require('advanced_math'); const utils = require('utils');\n"
        "export default async (request) => {\n"
        "  const input = request.message;\n"
        f"  const value = await (async () => {{ {body} }})();\n"
        "  return request.ok({ value: value === undefined ? '$undefined' : value });\n"
        "};\n",
        f"probe{random.randrange(10**9)}.js",
    )
    result = harness.run(handler, message={} if message is None else message)
    assert result.outcome == "ok", result.error
    return result.message["value"]


# --- uuid ---------------------------------------------------------------------------


def test_uuid_v3_published_vector(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        "return uuid.v3('Hello World', 'f8435596-ee6a-4a3d-a304-e3f0c7bb5321');",
    )
    assert value == "51bfe3fe-6be8-3192-8ff2-b86ffd390fcc"


def test_uuid_v3_and_v5_match_python_on_many_names(harness, write_handler):
    rng = random.Random(7)
    names = ["", "a", "pubnub", "héllo ✓ 日本", "x" * 55, "y" * 56, "z" * 64, "w" * 200]
    names += [
        "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 90)))
        for _ in range(40)
    ]
    namespaces = [str(pyuuid.NAMESPACE_DNS), str(pyuuid.NAMESPACE_URL), str(pyuuid.uuid4())]
    value = evaluate(
        harness,
        write_handler,
        "return input.names.map((n) => input.spaces.map((s) => [uuid.v3(n, s), uuid.v5(n, s)]));",
        {"names": names, "spaces": namespaces},
    )
    for name, row in zip(names, value, strict=True):
        for space, (v3, v5) in zip(namespaces, row, strict=True):
            assert v3 == str(pyuuid.uuid3(pyuuid.UUID(space), name))
            assert v5 == str(pyuuid.uuid5(pyuuid.UUID(space), name))


def test_uuid_validate_version_and_v4(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        """
        const id = uuid.v4();
        return [uuid.validate(id), uuid.version(id), uuid.validate('nope'),
                uuid.version(uuid.v5('a', uuid.v5.DNS)), uuid.validate(uuid.NIL)];
    """,
    )
    assert value == [True, 4, False, 5, True]


# --- jwt ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_jwt_signed_in_js_verifies_in_pyjwt_and_back(harness, write_handler, algorithm):
    secret = "shh-✓-secret-long-enough-for-pyjwt-to-accept-for-sha512-" * 2
    now = harness.clock.now_ms() // 1000
    signed = evaluate(
        harness,
        write_handler,
        f"return jwt.sign({{ sub: 'u1', role: 'admin', n: [1, 2] }}, input.secret, "
        f"{{ algorithm: '{algorithm}', expiresIn: '2h', issuer: 'pfunc' }});",
        {"secret": secret},
    )
    claims = pyjwt.decode(
        signed, secret, algorithms=[algorithm], issuer="pfunc", options={"verify_exp": False}
    )
    assert claims == {
        "sub": "u1",
        "role": "admin",
        "n": [1, 2],
        "iat": now,
        "exp": now + 7200,
        "iss": "pfunc",
    }
    assert pyjwt.get_unverified_header(signed) == {"alg": algorithm, "typ": "JWT"}

    from_python = pyjwt.encode({"sub": "u2", "exp": now + 60}, secret, algorithm=algorithm)
    verified = evaluate(
        harness,
        write_handler,
        "return jwt.verify(input.token, input.secret);",
        {"token": from_python, "secret": secret},
    )
    assert verified == {"sub": "u2", "exp": now + 60}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_jwt_rejects_a_wrong_secret_and_an_expired_token(harness, write_handler):
    body = """
        const token = jwt.sign({ sub: 'u1' }, 'right', { expiresIn: 60 });
        const outcome = (fn) => { try { fn(); return 'ok'; } catch (e) { return e.name + ': ' + e.message; } };
        return {
          token,
          wrong: outcome(() => jwt.verify(token, 'wrong')),
          tampered: outcome(() => jwt.verify(token.slice(0, -2) + 'xx', 'right')),
          malformed: outcome(() => jwt.verify('a.b', 'right')),
          fine: outcome(() => jwt.verify(token, 'right')),
          decoded: jwt.decode(token, { complete: true }).header,
        };
    """
    value = evaluate(harness, write_handler, body)
    assert value["wrong"] == "JsonWebTokenError: invalid signature"
    assert value["tampered"] == "JsonWebTokenError: invalid signature"
    assert value["malformed"] == "JsonWebTokenError: jwt malformed"
    assert value["fine"] == "ok"
    assert value["decoded"] == {"alg": "HS256", "typ": "JWT"}
    # Move the execution clock past the expiry: the same token is now expired.
    harness.clock.advance(61)
    expired = evaluate(
        harness,
        write_handler,
        """
        try { jwt.verify(input.token, 'right'); return 'ok'; }
        catch (e) { return [e.name, e.message, e.expiredAt.toISOString()]; }
    """,
        {"token": value["token"]},
    )
    assert expired == ["TokenExpiredError", "jwt expired", "2026-01-01T00:01:00.000Z"]
    # PyJWT agrees it was valid for exactly 60 seconds.
    assert (
        pyjwt.decode(value["token"], "right", algorithms=["HS256"], options={"verify_exp": False})[
            "exp"
        ]
        == 1_767_225_660
    )


def test_jwt_takes_callbacks_spans_and_options_as_jsonwebtoken_does(harness, write_handler):
    """jsonwebtoken 9's conventions (values checked against the package itself): a
    callback gets the error instead of a throw (verify's at once, sign's after the caller
    ran on), `ms` spans in words, its option checks and wording."""
    value = evaluate(
        harness,
        write_handler,
        """
        const attempt = (f) => { try { return f(); } catch (e) { return e.name + ': ' + e.message; } };
        const token = jwt.sign({ a: 1, iat: 100 }, 's');
        const seen = [];
        const returned = jwt.verify(token, 's', (error, claims) => { seen.push(['v', error, claims]); return 'r'; });
        jwt.verify(token, 'wrong', {}, (error, claims) => seen.push(['bad', error.message, claims]));
        jwt.sign({ a: 1 }, 's', { expiresin: 60 }, (error) => seen.push(['typo', error.message]));
        jwt.sign({ a: 1, iat: 100 }, 's', (error, signed) => seen.push(['signed', error, signed === token]));
        seen.push('ran on');
        await null;
        const spans = ['2 days', '10 minutes', '1.5h', '1 Year', '90'].map(
          (span) => jwt.decode(jwt.sign({ iat: 100 }, 's', { expiresIn: span })).exp);
        return { returned, seen, spans, errors: [
          attempt(() => jwt.sign({ a: 1 }, 's', { expiresIn: 'soon' })),
          attempt(() => jwt.sign({ a: 1 }, 's', { expiresIn: 1.5 })),
          attempt(() => jwt.sign({ a: 1, exp: 5 }, 's', { expiresIn: 60 })),
          attempt(() => jwt.sign({ a: 1, iss: 'x' }, 's', { issuer: 'y' })),
          attempt(() => jwt.sign('text', 's', { expiresIn: 60, subject: 'u' })),
          attempt(() => jwt.sign([1], 's')),
          attempt(() => jwt.verify(token, 's', { maxAge: '1h' })),
        ], primitive: jwt.decode(jwt.sign(5, 's')) };
    """,
    )
    assert value["returned"] == "r"
    assert value["seen"] == [
        ["v", None, {"a": 1, "iat": 100}],
        ["bad", "invalid signature", None],
        ["typo", '"expiresin" is not allowed in "options"'],
        "ran on",
        ["signed", None, True],
    ]
    assert value["spans"] == [172_900, 700, 5_500, 31_557_700, 100]
    assert value["errors"] == [
        'Error: "expiresIn" should be a number of seconds or string representing a timespan'
        ' eg: "1d", "20h", 60',
        'Error: "expiresIn" should be a number of seconds or string representing a timespan',
        'Error: Bad "options.expiresIn" option the payload already has an "exp" property.',
        'Error: Bad "options.issuer" option. The payload already has an "iss" property.',
        "Error: invalid expiresIn,subject option for string payload",
        'Error: Expected "payload" to be a plain object.',
        "TokenExpiredError: maxAge exceeded",
    ]
    assert value["primitive"] == "5"


def test_jwt_refuses_a_key_that_is_not_text_and_signs_a_json_body_as_its_text(
    harness, write_handler
):
    handler = write_handler(
        """
        const jwt = require('jwt');
        const attempt = (f) => { try { return f(); } catch (e) { return e.name + ': ' + e.message; } };
        export default (request, response) => response.send({
          unawaited: attempt(() => jwt.sign({ a: 1 }, Promise.resolve('s'))),
          number: attempt(() => jwt.verify(jwt.sign({ a: 1 }, 's'), 12345)),
          body: jwt.decode(jwt.sign(request.body, 's'), { complete: true }),
        });
        """,
        "keys.js",
    )
    result = harness.request(handler, method="POST", body='{"userId":"ada"}')
    answer = json.loads(result.response["body"])
    assert answer["unawaited"] == "Error: secretOrPrivateKey is not valid key material"
    assert answer["number"] == "JsonWebTokenError: secretOrPublicKey is not valid key material"
    # Production's body is a string: jsonwebtoken signs it as a string payload (no typ).
    assert answer["body"]["header"] == {"alg": "HS256"}
    assert answer["body"]["payload"] == {"userId": "ada"}


def test_jwt_audience_and_issuer_checks(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        """
        const token = jwt.sign({ sub: 'u' }, 's', { audience: 'app', issuer: 'me' });
        const check = (options) => { try { jwt.verify(token, 's', options); return 'ok'; }
                                    catch (e) { return e.message; } };
        return [check({ audience: 'app' }), check({ audience: 'other' }),
                check({ issuer: 'me' }), check({ issuer: 'you' })];
    """,
    )
    assert value == [
        "ok",
        "jwt audience invalid. expected: other",
        "ok",
        "jwt issuer invalid. expected: you",
    ]


# --- codecs, utils, advanced_math -----------------------------------------------------


def test_codec_known_answers(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        """
        return {
          basic: auth.basic('many', 'blocks'),
          btoa: b64.btoa('hello'), atob: b64.atob('aGVsbG8='),
          urlSafe: b64.encodeString('+'), back: b64.decodeString(b64.encodeString('a+b/c=')),
          parsed: qs.parse('a=5&b=10&b=11&c=%20x+y', { c: 15, d: 'dflt' }),
          query: qs.stringify({ a: 'x y', b: [1, 2], c: 'ä&=' }),
        };
    """,
    )
    assert value == {
        "basic": "Basic bWFueTpibG9ja3M=",
        "btoa": "aGVsbG8=",
        "atob": "hello",
        "urlSafe": "_",
        "back": "a+b/c=",
        "parsed": {"a": "5", "b": ["10", "11"], "c": " x y", "d": "dflt"},
        "query": "a=x%20y&b=1&b=2&c=%C3%A4%26%3D",
    }


def test_query_strings_as_nodes_querystring_gives_them(harness, write_handler):
    """What Node's querystring gives for values that are not strings, and for input that
    is not a string: a handler passing request.query (an object) gets its defaults only,
    not a key named "[object Object]"."""
    value = evaluate(
        harness,
        write_handler,
        """
        return {
          query: qs.stringify({ a: undefined, b: null, c: { x: 1 }, d: NaN, e: Infinity,
                                f: [1, undefined, 'x y'], g: true, h: [], i: -0, j: 1e21 }),
          notObject: [qs.stringify('abc'), qs.stringify(null), qs.stringify([5, 6])],
          fromObject: qs.parse({ page: '3' }, { page: '1' }),
          fromNumber: qs.parse(5),
        };
    """,
    )
    assert value == {
        "query": "a=&b=&c=&d=&e=&f=1&f=&f=x%20y&g=true&i=0&j=1e%2B21",
        "notObject": ["", "", "0=5&1=6"],
        "fromObject": {"page": "1"},
        "fromNumber": {},
    }


def test_distance_between_new_york_and_los_angeles(harness, write_handler):
    miles = evaluate(
        harness, write_handler, "return maths.getDistance(40.7128, -74.0060, 34.0522, -118.2437);"
    )
    assert abs(miles - 2445) / 2445 < 0.005  # great-circle distance, about 2,445 miles
    london_paris = evaluate(
        harness, write_handler, "return maths.getDistance(51.5074, -0.1278, 48.8566, 2.3522);"
    )
    assert abs(london_paris - 213.5) / 213.5 < 0.005
    assert evaluate(harness, write_handler, "return maths.deg2rad(180);") == pytest.approx(
        3.14159265
    )


def test_utils(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        """
        const draws = Array.from({ length: 2000 }, () => utils.randomInt(3, 7));
        return { min: Math.min(...draws), max: Math.max(...draws),
                 whole: draws.every(Number.isInteger),
                 numeric: [utils.isNumeric('12.5'), utils.isNumeric(3), utils.isNumeric('x'),
                           utils.isNumeric(''), utils.isNumeric(null)] };
    """,
    )
    assert value == {
        "min": 3,
        "max": 6,
        "whole": True,
        "numeric": [True, True, False, False, False],
    }


# --- jsonpath ---------------------------------------------------------------------------

STORE = {
    "store": {
        "book": [
            {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
            {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99},
            {
                "category": "fiction",
                "author": "Herman Melville",
                "title": "Moby Dick",
                "isbn": "0-553-21311-3",
                "price": 8.99,
            },
            {
                "category": "fiction",
                "author": "J. R. R. Tolkien",
                "title": "The Lord",
                "isbn": "0-395-19395-8",
                "price": 22.99,
            },
        ],
        "bicycle": {"color": "red", "price": 19.95},
    }
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "$.store.book[*].author",
            ["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"],
        ),
        ("$..author", ["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"]),
        ("$.store..price", [8.95, 12.99, 8.99, 22.99, 19.95]),
        ("$..book[2].title", ["Moby Dick"]),
        ("$..book[-1:].title", ["The Lord"]),
        ("$..book[0,1].title", ["Sayings", "Sword"]),
        ("$..book[:2].price", [8.95, 12.99]),
        ("$..book[?(@.isbn)].title", ["Moby Dick", "The Lord"]),
        ("$..book[?(@.price < 10)].title", ["Sayings", "Moby Dick"]),
        ("$..book[?(@.category === 'fiction' && @.price > 20)].author", ["J. R. R. Tolkien"]),
        ("$.store.bicycle['color']", ["red"]),
        ("$..book[(@.length-1)].title", ["The Lord"]),
        ("$.store.nothing", []),
    ],
)
def test_jsonpath_queries(harness, write_handler, path, expected):
    value = evaluate(
        harness,
        write_handler,
        "return jp.JSONPath({ path: input.path, json: input.json });",
        {"path": path, "json": STORE},
    )
    assert value == expected


def test_jsonpath_star_on_an_object_and_recursive_star(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        "return jp.JSONPath({ path: '$.store.bicycle.*', json: input });",
        STORE,
    )
    assert value == ["red", 19.95]
    count = evaluate(
        harness, write_handler, "return jp.JSONPath({ path: '$..*', json: input }).length;", STORE
    )
    assert count == _members_below(STORE) == 27  # every member below the root
    # jsonpath-plus's other form: (path, json)
    forms = evaluate(
        harness, write_handler, "return jp.JSONPath('$.store.bicycle.*', input);", STORE
    )
    assert forms == ["red", 19.95]


def _members_below(value: Any) -> int:
    children = (
        value
        if isinstance(value, list)
        else (list(value.values()) if isinstance(value, dict) else [])
    )
    return len(children) + sum(_members_below(child) for child in children)


# --- crypto (host) ------------------------------------------------------------------------


def test_crypto_known_vector_and_hmac_rejects_bad_algorithm(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        """
        const crypto = require('crypto');
        let bad;
        try { await crypto.hmac('a2V5', 'm', 'MD5'); } catch (e) { bad = e.message; }
        return [await crypto.sha256('secretPayload'), bad];
    """,
    )
    assert value[0] == "sx4yvIv4TM+p33je5wnxV8qnzekQvvvHaPZzGukC2RI="
    assert "not an HMAC algorithm" in value[1]


def test_sync_modules_return_values_not_promises(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        """
        return [typeof jwt.sign({}, 's'), typeof uuid.v4(), typeof b64.btoa('x'),
                Array.isArray(jp.JSONPath({ path: '$', json: 1 })), typeof maths.deg2rad(1)];
    """,
    )
    assert value == ["string", "string", "string", True, "number"]


def test_jwt_sign_hs512_tokens_verify_with_pyjwt(harness, write_handler):
    KEY = "k" * 64  # as long as RFC 7518 recommends for HS512
    tokens = evaluate(
        harness,
        write_handler,
        "const out = []; for (let i = 0; i < 20; i++) "
        "out.push(jwt.sign({ i }, KEY, { algorithm: 'HS512' })); return out;".replace(
            "KEY", repr(KEY)
        ),
    )
    import jwt as pyjwt

    # Twenty distinct tokens, each one PyJWT accepts with the same key and algorithm.
    assert len(set(tokens)) == 20
    assert [pyjwt.decode(t, KEY, algorithms=["HS512"])["i"] for t in tokens] == list(range(20))


# --- crypto.sign / crypto.verify (ECDSA P-256, Ed25519) ----------------------------------


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _ec_jwk(private_key) -> dict[str, str]:
    numbers = private_key.private_numbers()
    public = numbers.public_numbers
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(public.x.to_bytes(32, "big")),
        "y": _b64url(public.y.to_bytes(32, "big")),
        "d": _b64url(numbers.private_value.to_bytes(32, "big")),
    }


SIGN_AND_VERIFY = """
const crypto = require('crypto');
const { key, publicKey, message, algorithm, foreign } = input;
const signature = await crypto.sign(key, message, crypto.ALGORITHM[algorithm]);
return {
  signature,
  valid: await crypto.verify(signature, publicKey, message, crypto.ALGORITHM[algorithm]),
  tampered: await crypto.verify(signature, publicKey, message + '!', crypto.ALGORITHM[algorithm]),
  foreign: await crypto.verify(foreign, publicKey, message, crypto.ALGORITHM[algorithm]),
};
"""


@pytest.mark.parametrize(
    ("algorithm", "hash_name"),
    [("ECDSA_P256_SHA256", "SHA256"), ("ECDSA_P256_SHA1", "SHA1"), ("ECDSA_P256_SHA512", "SHA512")],
)
def test_ecdsa_sign_and_verify_against_cryptography(harness, write_handler, algorithm, hash_name):
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature,
        encode_dss_signature,
    )

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = _ec_jwk(key)
    public_jwk = {k: v for k, v in jwk.items() if k != "d"}
    message = "order:42:paid"
    r, s = decode_dss_signature(key.sign(message.encode(), ec.ECDSA(getattr(hashes, hash_name)())))
    from_python = _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    value = evaluate(
        harness,
        write_handler,
        SIGN_AND_VERIFY,
        {
            "key": jwk,
            "publicKey": public_jwk,
            "message": message,
            "algorithm": algorithm,
            "foreign": from_python,
        },
    )
    assert value["valid"] is True and value["tampered"] is False and value["foreign"] is True
    raw = base64.urlsafe_b64decode(value["signature"] + "=" * (-len(value["signature"]) % 4))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.public_key().verify(der, message.encode(), ec.ECDSA(getattr(hashes, hash_name)()))


def test_ed25519_sign_and_verify_with_pem_and_jwk(harness, write_handler):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    message = "hello ✓"
    value = evaluate(
        harness,
        write_handler,
        SIGN_AND_VERIFY,
        {
            "key": pem,
            "publicKey": {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public_raw)},
            "message": message,
            "algorithm": "ED25519",
            "foreign": _b64url(key.sign(message.encode())),
        },
    )
    assert value["valid"] is True and value["tampered"] is False and value["foreign"] is True


def test_sign_with_a_bad_key_rejects_clearly(harness, write_handler):
    value = evaluate(
        harness,
        write_handler,
        """
        const crypto = require('crypto');
        try { await crypto.sign({ kty: 'RSA' }, 'm', crypto.ALGORITHM.ECDSA_P256_SHA256); }
        catch (e) { return e.message; }
    """,
    )
    assert value.startswith("crypto.sign: the key must be an EC P-256 JWK object or PEM text")


def test_sign_with_a_key_of_the_wrong_kind_says_which_kind(harness, write_handler):
    from cryptography.hazmat.primitives.asymmetric import ec

    jwk = _ec_jwk(ec.generate_private_key(ec.SECP256R1()))
    public = {name: jwk[name] for name in ("kty", "crv", "x", "y")}
    value = evaluate(
        harness,
        write_handler,
        """
        const crypto = require('crypto');
        const attempt = (key, algorithm) => crypto.sign(key, 'm', crypto.ALGORITHM[algorithm])
          .then(() => 'signed', (e) => e.message);
        return [await attempt(input.jwk, 'ED25519'), await attempt(input.public, 'ECDSA_P256_SHA256')];
    """,
        {"jwk": jwk, "public": public},
    )
    assert value == [
        "crypto.sign: ED25519 needs an Ed25519 key; this is an EC key on secp256r1",
        'crypto.sign: the private JWK has no "d" member (a public key has none: signing '
        "needs the private one)",
    ]


# --- compiled on first require --------------------------------------------------------


def test_the_built_ins_compile_on_first_require_whatever_the_handler_replaced(
    harness, write_handler
):
    # The prelude compiles builtins.js when a handler first requires one of them, after
    # the handler's own top-level code ran: what that code replaced must not matter.
    handler = write_handler(
        "globalThis.eval = () => ({});\n"
        "globalThis.__pfunc_builtinsSource = 'throw new Error(\"not pfunc\")';\n"
        "export default async (request) => {\n"
        "  const uuid = require('uuid');\n"
        "  const pubnub = require('pubnub');\n"
        "  const modules = ['utils', 'jwt', 'codec/base64', 'jsonpath', 'advanced_math'];\n"
        "  return request.ok({\n"
        "    id: uuid.v5('pfunc', '6ba7b811-9dad-11d1-80b4-00c04fd430c8'),\n"
        "    same: require('uuid') === uuid,\n"
        "    kinds: modules.map((name) => typeof require(name)),\n"
        "    parseToken: typeof pubnub.parseToken,\n"
        "  });\n"
        "};\n",
        "replaces_eval.js",
    )
    result = harness.run(handler, message={})
    assert result.outcome == "ok", result.error
    assert result.message == {
        "id": str(pyuuid.uuid5(pyuuid.NAMESPACE_URL, "pfunc")),
        "same": True,
        "kinds": ["object"] * 5,
        "parseToken": "function",
    }


def test_the_built_ins_load_whatever_the_handler_froze_or_replaced_before(harness, write_handler):
    handler = write_handler(
        "String.prototype.repeat = () => '';\n"
        "globalThis.__pfunc_ownCodeLine = 1;\n"
        "Object.freeze(globalThis);\n"
        "export default async (request) => {\n"
        "  const pubnub = require('pubnub');\n"
        "  pubnub.parseToken = () => 'mine';\n"
        "  console.log(pubnub.parseToken('t'), require('uuid').v4().length);\n"
        "  require('jwt').verify('not.a.token', 'secret');\n"
        "  return request.ok();\n"
        "};\n",
        "freezes.js",
    )
    result = harness.run(handler, message={})
    assert result.outcome == "error"
    assert result.error.type == "JsonWebTokenError"
    # The handler's own line, and none of the built-ins' frames.
    assert result.error.line == 8
    assert [line.strip() for line in result.error.stack.splitlines()] == ["at freezes.js:8:18"]
    assert [entry["text"] for entry in result.logs] == ["mine 36"]


def test_ugc_checks_its_request_and_says_it_did_not_moderate(harness, write_handler):
    handler = write_handler(
        """
        const ugc = require('ugc');
        export default async (request) => {
          const verdict = await ugc.moderateMessage(
            { configId: 'cfg', message: request.message, channel: 'chat', userId: 'ada' });
          let refused;
          try { await ugc.moderateMessage({ configId: 'cfg', message: {} }); }
          catch (error) { refused = error.message; }
          return request.ok({ flagged: verdict.flagged, actions: verdict.actions, refused });
        };
        """,
        "moderated.js",
    )
    result = harness.run(handler, message={"text": "hello"})
    assert result.outcome == "ok", result.error
    assert result.message == {
        "flagged": False,
        "actions": [],
        "refused": "ugc.moderateMessage: channel is required (a string)",
    }
    assert any("pfunc does not run Auto Moderation" in w for w in result.warnings)
    assert [call["module"] for call in result.operations["calls"]] == ["ugc", "ugc"]
