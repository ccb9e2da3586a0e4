"""The JavaScript SDK's publish options, as functions' pubnub.publish, fire, signal and
publishFile take them, turned into what the REST publish's query carries; and the channel
checked as the service checks it."""

from __future__ import annotations

import json
from typing import Any

from pfunc.channels import custom_type_problem, name_problem
from pfunc.modules.calls import CallContext, HandlerCallError, service_status


def publish_params(method: str, options: dict[str, Any]) -> dict[str, str]:
    """The JavaScript SDK's publish options as the REST publish's query carries them:
    storeInHistory, ttl (hours) and customMessageType, checked as the service checks them."""
    params: dict[str, str] = {}
    store = options.get("storeInHistory")
    if store is not None:
        if not isinstance(store, bool):
            raise HandlerCallError("TypeError", f"pubnub.{method}: storeInHistory is true or false")
        params["store"] = "1" if store else "0"
    ttl = options.get("ttl")
    if ttl is not None:
        if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl < 0:
            raise HandlerCallError("TypeError", f"pubnub.{method}: ttl is a number of hours")
        params["ttl"] = str(ttl)
    custom_type = options.get("customMessageType")
    if custom_type is not None:
        if not isinstance(custom_type, str) or custom_type_problem(custom_type):
            raise HandlerCallError(
                "Error",
                f"pubnub.{method}: customMessageType {json.dumps(custom_type)} is not one PubNub "
                "takes: 3 to 50 letters, digits, - and _, not starting with a sign or pn-/pn_",
            )
        params["custom_message_type"] = custom_type
    return params


def check_channel(method: str, channel: str, context: CallContext) -> None:
    """Refuse a channel the service refuses a client's publish to (a comma, a colon...),
    as it answers: 400 Invalid Channel, carried as the SDK's error.status."""
    problem = name_problem(channel)
    if problem is not None:
        timetoken = context.timetoken() if context.timetoken else "0"
        raise HandlerCallError(
            "Error",
            f"pubnub.{method}: Invalid Channel {json.dumps(channel)}: {problem}",
            status=service_status(400, [0, "Invalid Channel", timetoken]),
        )
