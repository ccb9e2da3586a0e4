"""ECDSA P-256 and Ed25519 signing for the crypto module, with the `cryptography` package."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pfunc.modules.calls import HandlerCallError, JSArg, padded_args

ECDSA_HASHES = {
    "ECDSA_P256_SHA1": "SHA1",
    "ECDSA_P256_SHA256": "SHA256",
    "ECDSA_P256_SHA512": "SHA512",
}
ALGORITHMS = (*ECDSA_HASHES, "ED25519")


def _b64decode(text: str) -> bytes:
    cleaned = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _algorithm(call: str, arg: JSArg) -> str:
    if arg.value not in ALGORITHMS:
        raise HandlerCallError(
            "Error",
            f"crypto.{call}: algorithm {arg.describe()} is not a signing algorithm; use "
            "crypto.ALGORITHM.ECDSA_P256_SHA1/SHA256/SHA512 or ED25519 (HMAC: crypto.hmac)",
        )
    return str(arg.value)


def _load_key(call: str, arg: JSArg, algorithm: str, private: bool) -> Any:
    """The key, checked to be of the algorithm's kind; errors say what is wrong in
    JavaScript's terms (a JWK's member, the kind of key), not the library's."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = _read_key(call, arg, algorithm, private)
    if algorithm == "ED25519":
        fits = isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
    else:
        fits = isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
            key.curve.name == "secp256r1"
        )
    if not fits:
        wanted = "an Ed25519" if algorithm == "ED25519" else "an EC P-256"
        raise HandlerCallError(
            "Error", f"crypto.{call}: {algorithm} needs {wanted} key; this is {_kind(key)}"
        )
    return key


def _kind(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"an EC key on {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "an RSA key"
    return "a key of another kind"


def _read_key(call: str, arg: JSArg, algorithm: str, private: bool) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    value = arg.value
    want = "private" if private else "public"
    try:
        if isinstance(value, str) and "-----BEGIN" in value:
            data = value.encode()
            if private:
                return serialization.load_pem_private_key(data, password=None)
            try:
                return serialization.load_pem_public_key(data)
            except ValueError:
                return serialization.load_pem_private_key(data, password=None).public_key()
        if isinstance(value, dict) and value.get("kty") == "EC" and value.get("crv") == "P-256":
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(_b64decode(value["x"]), "big"),
                int.from_bytes(_b64decode(value["y"]), "big"),
                ec.SECP256R1(),
            )
            if private:
                return ec.EllipticCurvePrivateNumbers(
                    int.from_bytes(_b64decode(value["d"]), "big"), numbers
                ).private_key()
            return numbers.public_key()
        if isinstance(value, dict) and value.get("kty") == "OKP" and value.get("crv") == "Ed25519":
            if private:
                return ed25519.Ed25519PrivateKey.from_private_bytes(_b64decode(value["d"]))
            return ed25519.Ed25519PublicKey.from_public_bytes(_b64decode(value["x"]))
    except KeyError as missing:
        hint = " (a public key has none: signing needs the private one)" if private else ""
        raise HandlerCallError(
            "Error", f'crypto.{call}: the {want} JWK has no "{missing.args[0]}" member{hint}'
        ) from None
    except (ValueError, TypeError, binascii.Error) as error:
        raise HandlerCallError(
            "Error", f"crypto.{call}: the {want} key is not usable for {algorithm}: {error}"
        ) from None
    kind = "an EC P-256" if algorithm.startswith("ECDSA") else "an Ed25519 (OKP)"
    raise HandlerCallError(
        "TypeError",
        f"crypto.{call}: the key must be {kind} JWK object or PEM text, got {arg.describe()}",
    )


def _message(call: str, arg: JSArg) -> bytes:
    if not isinstance(arg.value, str):
        raise HandlerCallError("TypeError", f"crypto.{call}: the message must be a string")
    return arg.value.encode("utf-8")


def sign(args: list[JSArg]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key_arg, message_arg, algorithm_arg = padded_args(args, 3)[:3]
    algorithm = _algorithm("sign", algorithm_arg)
    key = _load_key("sign", key_arg, algorithm, private=True)
    message = _message("sign", message_arg)
    try:
        if algorithm == "ED25519":
            return _b64url(key.sign(message))
        der = key.sign(message, ec.ECDSA(getattr(hashes, ECDSA_HASHES[algorithm])()))
    except (TypeError, AttributeError) as error:
        raise HandlerCallError(
            "Error", f"crypto.sign: the key does not fit {algorithm}: {error}"
        ) from None
    r, s = decode_dss_signature(der)
    return _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def verify(args: list[JSArg]) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    signature_arg, key_arg, message_arg, algorithm_arg = padded_args(args, 4)[:4]
    algorithm = _algorithm("verify", algorithm_arg)
    key = _load_key("verify", key_arg, algorithm, private=False)
    message = _message("verify", message_arg)
    try:
        signature = _b64decode(str(signature_arg.value))
    except (ValueError, binascii.Error):
        return False
    try:
        if algorithm == "ED25519":
            key.verify(signature, message)
        else:
            if len(signature) == 64:  # r||s; DER signatures are accepted as they are
                signature = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
            key.verify(signature, message, ec.ECDSA(getattr(hashes, ECDSA_HASHES[algorithm])()))
    except (InvalidSignature, TypeError, AttributeError, ValueError):
        return False
    return True
