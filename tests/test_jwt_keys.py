"""The jwt module's public-key algorithms (RS256/384/512, ES256/384/512), known-answer
checked against PyJWT over the `cryptography` library: tokens pfunc signs verify there,
tokens signed there verify in pfunc, with PKCS#8, PKCS#1/SEC1 and SPKI PEM keys."""

from __future__ import annotations

import json

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pfunc.sandbox.sync_builtins import SyncBuiltinError, SyncBuiltins

NOW_MS = 1_767_225_600_000


@pytest.fixture(scope="module")
def builtins() -> SyncBuiltins:
    return SyncBuiltins(None)


def jwt_call(builtins: SyncBuiltins, method: str, *args):
    return json.loads(builtins.call("jwt", method, json.dumps(list(args)), NOW_MS, 30))


def private_pem(key, pkcs8: bool) -> str:
    form = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(
        serialization.Encoding.PEM, form, serialization.NoEncryption()
    ).decode()


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


KEYS = {
    "RS256": rsa.generate_private_key(65537, 2048),
    "RS384": rsa.generate_private_key(65537, 2048),
    "RS512": rsa.generate_private_key(65537, 2048),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "ES512": ec.generate_private_key(ec.SECP521R1()),
}


@pytest.mark.parametrize("algorithm", sorted(KEYS))
@pytest.mark.parametrize("pkcs8", [True, False], ids=["pkcs8", "traditional"])
def test_pfunc_and_pyjwt_verify_each_others_tokens(builtins, algorithm, pkcs8):
    key = KEYS[algorithm]
    mine = jwt_call(
        builtins, "sign", {"sub": "ada"}, private_pem(key, pkcs8), {"algorithm": algorithm}
    )
    assert pyjwt.decode(mine, public_pem(key), algorithms=[algorithm]) == {
        "sub": "ada",
        "iat": NOW_MS // 1000,
    }
    assert pyjwt.get_unverified_header(mine) == {"alg": algorithm, "typ": "JWT"}
    theirs = pyjwt.encode({"sub": "bob"}, private_pem(key, pkcs8), algorithm=algorithm)
    assert jwt_call(builtins, "verify", theirs, public_pem(key)) == {"sub": "bob"}


def test_a_pem_key_needs_its_algorithm_named_and_a_wrong_key_fails(builtins):
    """As jsonwebtoken 9: the algorithm is HS256 unless named, whatever the key."""
    rsa_key, ec_key = KEYS["RS256"], KEYS["ES384"]
    with pytest.raises(SyncBuiltinError, match="must be a symmetric key when using HS256"):
        jwt_call(builtins, "sign", {"n": 1}, private_pem(ec_key, True), {"noTimestamp": True})
    options = {"noTimestamp": True, "algorithm": "ES384"}
    token = jwt_call(builtins, "sign", {"n": 1}, private_pem(ec_key, True), options)
    assert pyjwt.get_unverified_header(token)["alg"] == "ES384"
    with pytest.raises(SyncBuiltinError, match="invalid signature"):
        jwt_call(builtins, "verify", token, public_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(
        SyncBuiltinError, match='"alg" parameter "ES256" requires curve "prime256v1"'
    ):
        jwt_call(builtins, "sign", {}, private_pem(ec_key, True), {"algorithm": "ES256"})
    with pytest.raises(SyncBuiltinError, match='"alg" parameter for "ec" key type must be one of'):
        jwt_call(builtins, "sign", {}, private_pem(ec_key, True), {"algorithm": "RS256"})
    with pytest.raises(SyncBuiltinError, match="must be an asymmetric key when using RS256"):
        jwt_call(builtins, "sign", {}, public_pem(rsa_key), {"algorithm": "RS256"})
    with pytest.raises(SyncBuiltinError, match="invalid algorithm"):
        # An HMAC token is refused with a public key, as jsonwebtoken refuses it; and an
        # ES token with an RSA key (its algorithms are RS256/384/512).
        jwt_call(
            builtins, "verify", pyjwt.encode({}, "s" * 32, algorithm="HS256"), public_pem(rsa_key)
        )
    with pytest.raises(SyncBuiltinError, match="invalid algorithm"):
        jwt_call(builtins, "verify", token, public_pem(rsa_key))
    with pytest.raises(SyncBuiltinError, match="not a PEM key"):
        broken = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        jwt_call(builtins, "sign", {}, broken, {"algorithm": "RS256"})


def test_a_handler_signs_and_verifies_with_rs256(harness, write_handler):
    key = KEYS["RS256"]
    handler = write_handler(
        f"""
        const jwt = require("jwt");
        const PRIVATE = {json.dumps(private_pem(key, True))};
        const PUBLIC = {json.dumps(public_pem(key))};
        export default (request) => {{
          const token = jwt.sign({{ user: "ada" }}, PRIVATE, {{ algorithm: "RS256", expiresIn: "1h" }});
          return request.ok({{ token, claims: jwt.verify(token, PUBLIC) }});
        }};
        """
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert result.message["claims"]["user"] == "ada"
    assert (
        pyjwt.decode(
            result.message["token"],
            public_pem(key),
            algorithms=["RS256"],
            options={"verify_exp": False},
        )["user"]
        == "ada"
    )
