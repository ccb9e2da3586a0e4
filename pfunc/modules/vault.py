"""The vault module: secrets from pfunc.toml [vault], a .env file, or PFUNC_VAULT_<NAME>.

Values read by a handler are remembered on the call context so that reports mask them
(secret_pattern finds them in a text).
"""

from __future__ import annotations

import json
import re

from pfunc.modules.calls import AnsweredAtOnce, CallContext, HandlerCallError, JSArg, padded_args


class VaultModule(AnsweredAtOnce):
    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        return args[0].value if args and isinstance(args[0].value, str) else None

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        if method != "get":
            raise HandlerCallError("TypeError", f"vault.{method} is not a function")
        (name_arg,) = padded_args(args, 1)[:1]
        name = name_arg.value
        if not isinstance(name, str) or not name:
            raise HandlerCallError(
                "TypeError",
                f"vault.get: the secret name must be a string, got {name_arg.describe()}",
            )
        secrets = context.vault
        if name not in secrets:
            raise HandlerCallError(
                "Error",
                f'vault.get: no secret named "{name}"; add {name} = "..." under [vault] in '
                f"pfunc.toml, put {name}=... in .env beside it, or set PFUNC_VAULT_{name}",
            )
        context.secrets_read.add(secrets[name])
        return json.dumps(secrets[name])


# Vault values shorter than this are masked only as whole words.
SHORT_SECRET = 8


def secret_pattern(secrets: set[str]) -> re.Pattern[str] | None:
    """What finds the vault values a handler read wherever they stand in a text; None when
    there are none. A long value is found anywhere; a short one only as a word of its own,
    so that a test's "test" leaves "latest" alone (a path's "/test/" is still found)."""
    secrets = {secret for secret in secrets if len(secret) >= 3}
    if not secrets:
        return None
    return re.compile(
        "|".join(
            re.escape(secret)
            if len(secret) >= SHORT_SECRET
            else rf"(?<!\w){re.escape(secret)}(?!\w)"
            for secret in sorted(secrets, key=len, reverse=True)
        )
    )
