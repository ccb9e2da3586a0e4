"""The ugc module: PubNub's Auto Moderation, which pfunc cannot run.

`moderateMessage` checks its request as PubNub documents it (configId, message, channel,
userId; meta optional) and answers "not flagged", with a warning that it did not
moderate: a handler that moderates loads and runs its ordinary path locally.
"""

from __future__ import annotations

import json
import uuid

from pfunc.modules.calls import AnsweredAtOnce, CallContext, HandlerCallError, JSArg, padded_args

_REQUIRED_TEXT = ("configId", "channel", "userId")


class UgcModule(AnsweredAtOnce):
    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        request = args[0].value if args else None
        config = request.get("configId") if isinstance(request, dict) else None
        return config if isinstance(config, str) else None

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        if method != "moderateMessage":
            raise HandlerCallError("TypeError", f"ugc.{method} is not a function")
        (request_arg,) = padded_args(args, 1)[:1]
        request = request_arg.value
        if not isinstance(request, dict):
            raise HandlerCallError(
                "TypeError",
                "ugc.moderateMessage: pass { configId, message, channel, userId, meta? }, got "
                f"{request_arg.describe()}",
            )
        for field in _REQUIRED_TEXT:
            if not isinstance(request.get(field), str) or not request[field]:
                raise HandlerCallError(
                    "TypeError", f"ugc.moderateMessage: {field} is required (a string)"
                )
        if "message" not in request:
            raise HandlerCallError("TypeError", "ugc.moderateMessage: message is required")
        context.warn(
            f'ugc.moderateMessage (configId "{request["configId"]}"): pfunc does not run Auto '
            "Moderation; it answered not flagged"
        )
        answer = {
            "moderationId": str(uuid.uuid4()),
            "flagged": False,
            "actions": [],
            "categories": {},
            "transform": {},
        }
        return json.dumps(answer)
