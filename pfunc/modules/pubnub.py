"""The pubnub module: publish, fire and signal through the local bus; time; calls on
the project's state (history, presence, actions, channel groups, push, App Context,
Access Manager tokens, files), each in a module of its own.

A handler's publish runs the functions bound to its channel (the chain is part of the
calling execution's report) and carries the hop count on, so that PubNub's 3-hop
limit applies. Other pubnub methods are refused in the sandbox as not emulated.
"""

from __future__ import annotations

import json
from typing import Any

from pfunc.events import kinds_triggered_by
from pfunc.modules.calls import CallContext, HandlerCallError, JSArg, padded_args
from pfunc.modules.publish_options import check_channel, publish_params
from pfunc.modules.pubnub_channels import CHANNEL_CALLS
from pfunc.modules.pubnub_context import CONTEXT_CALLS
from pfunc.modules.pubnub_files import FILE_CALLS
from pfunc.modules.pubnub_state import STATE_CALLS
from pfunc.result import TOO_LARGE

# The methods that route a message through the bus: the bus's verbs.
PUBLISHING = ("publish", "fire", "signal")
# Calls on the project's state (history, presence, actions, registrations, App Context,
# tokens, files), by the JavaScript SDK's method name.
CALLS = {**STATE_CALLS, **CHANNEL_CALLS, **CONTEXT_CALLS, **FILE_CALLS}


class PubNubModule:
    def waits(self, method: str, args: list[JSArg], context: CallContext) -> bool:
        # A publish runs other functions, which may wait on the network; the project's
        # state belongs to the server's loop: each call runs as a task there.
        return True

    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        if method in PUBLISHING and args and isinstance(args[0].value, dict):
            channel = args[0].value.get("channel")
            return channel if isinstance(channel, str) else None
        return None

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        if context.publish is None or context.timetoken is None:
            raise HandlerCallError("Error", f"pubnub.{method}: no bus is attached")
        if method == "time":
            return json.dumps(int(context.timetoken()))
        if method in CALLS:
            (options_arg,) = padded_args(args, 1)[:1]
            value = options_arg.value
            options = value if isinstance(value, dict | str) else {}
            if context.pubnub_data is None:
                raise HandlerCallError("Error", f"pubnub.{method}: no project state is attached")
            return json.dumps(await CALLS[method](options, context.pubnub_data, context))
        if method not in PUBLISHING:
            raise HandlerCallError("Error", f"pubnub.{method} is not emulated by pfunc")
        (options_arg,) = padded_args(args, 1)[:1]
        options: Any = options_arg.value
        if not isinstance(options, dict):
            raise HandlerCallError(
                "TypeError",
                f'pubnub.{method}: pass an object, e.g. pubnub.{method}({{ channel: "chat", '
                f'message: {{ text: "hi" }} }}); got {options_arg.describe()}',
            )
        channel = options.get("channel")
        if not isinstance(channel, str) or not channel or "*" in channel:
            raise HandlerCallError(
                "TypeError",
                f"pubnub.{method}: channel must be a channel name (no wildcards), got "
                f"{json.dumps(channel)}",
            )
        check_channel(method, channel, context)
        if "message" not in options:
            raise HandlerCallError("TypeError", f"pubnub.{method}: message is missing")
        meta = options.get("meta") if isinstance(options.get("meta"), dict) else None
        report = await context.publish(
            channel,
            options["message"],
            verb=method,
            hop=context.hop + 1,
            meta=meta,
            params=publish_params(method, options),
        )
        context.triggered.append(report)
        if report.not_triggered:
            context.warn(
                f'pubnub.{method}: the message to "{channel}" is a string, and PubNub runs no '
                f"function for a function's string message (its JSON requirement), so "
                f"{', '.join(map(json.dumps, report.not_triggered))} did not run; send an "
                "object to trigger them"
            )
        if report.drop is not None:
            context.warn(report.drop.message)
            # Past the hop limit PubNub drops the publish quietly; a message too large
            # is refused, as PubNub's publish refuses it.
            if report.drop.reason == TOO_LARGE:
                raise HandlerCallError("Error", f"pubnub.{method}: {report.drop.message}")
        elif not report.delivered:
            raise HandlerCallError(
                "Error",
                f'pubnub.{method}: the message to "{channel}" was not delivered: '
                f"{kinds_triggered_by(method, 'before')[0].name} function "
                f'"{report.stopped_by}" aborted or failed it',
            )
        return json.dumps([1, "Sent", report.timetoken or context.timetoken()])
