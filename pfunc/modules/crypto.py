"""The crypto module: digests, HMAC, and ECDSA/Ed25519 signatures, answered on the host.

Digests are standard base64 (PubNub's documented form, not hex); HMAC signatures are
URL-safe base64, with the key base64-decoded first. `sign(key, msg, algorithm)` and
`verify(signature, key, msg, algorithm)` take the key as a JWK object (PubNub documents
it only as an Object) or PEM text; signatures are URL-safe base64, ECDSA ones in the
r||s form of WebCrypto and JWS. `cryptography` is imported only for those two calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from pfunc.modules import signing as _signing
from pfunc.modules.calls import AnsweredAtOnce, CallContext, HandlerCallError, JSArg

_DIGESTS = {"sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
_HMAC_ALGORITHMS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256", "HMAC_SHA512": "sha512"}


def _text(call: str, name: str, arg: JSArg) -> str:
    if arg.invalid is not None or not isinstance(arg.value, str):
        raise HandlerCallError(
            "TypeError",
            f"crypto.{call}: {name} must be a string, got {arg.type_name()}; "
            "JSON.stringify objects first",
        )
    return arg.value


class CryptoModule(AnsweredAtOnce):
    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        return None

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        if method in _DIGESTS:
            text = _text(method, "text", args[0] if args else JSArg({"t": "undefined"}))
            digest = hashlib.new(_DIGESTS[method], text.encode("utf-8")).digest()
            return json.dumps(base64.b64encode(digest).decode())
        if method == "hmac":
            return json.dumps(self._hmac(args))
        if method == "sign":
            return json.dumps(_signing.sign(args))
        if method == "verify":
            return json.dumps(_signing.verify(args))
        raise HandlerCallError(
            "Error",
            f"crypto.{method} is not available; available: sha1, sha256, sha512, hmac, sign, "
            "verify",
        )

    @staticmethod
    def _hmac(args: list[JSArg]) -> str:
        padded = args + [JSArg({"t": "undefined"})] * (3 - len(args))
        key_text = _text("hmac", "key (base64)", padded[0])
        message = _text("hmac", "message", padded[1])
        algorithm = "HMAC_SHA256" if padded[2].is_undefined else padded[2].value
        if algorithm not in _HMAC_ALGORITHMS:
            raise HandlerCallError(
                "Error",
                f"crypto.hmac: algorithm {padded[2].describe()} is not an HMAC algorithm; use "
                "crypto.ALGORITHM.HMAC_SHA1, HMAC_SHA256 or HMAC_SHA512",
            )
        try:
            normalised = key_text.replace("-", "+").replace("_", "/")
            key = base64.b64decode(normalised + "=" * (-len(normalised) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise HandlerCallError(
                "Error",
                "crypto.hmac: the key must be base64 text (PubNub decodes it before signing); "
                f"got {padded[0].describe()}",
            ) from None
        signature = hmac.new(key, message.encode("utf-8"), _HMAC_ALGORITHMS[algorithm]).digest()
        return base64.urlsafe_b64encode(signature).decode()
