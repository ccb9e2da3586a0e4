"""Rate limiting (before-publish), in Python: the same logic as rate_limit.js.

    pfunc run examples/rate_limit.py --message '{"userId":"u1"}'
"""

import math

from pfunc import require

db = require("kvstore")
DEFAULT_LIMIT = 10


def configured_limit(setting):
    """The stored limit when it is a positive number (text or number), else the default."""
    try:
        limit = float(setting)
    except (TypeError, ValueError):
        return DEFAULT_LIMIT
    if not math.isfinite(limit) or limit <= 0:
        return DEFAULT_LIMIT
    return int(limit) if limit.is_integer() else limit


async def handler(request):
    message = request.message
    user_id = message.get("userId") if isinstance(message, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return request.abort("message has no userId")

    limit = configured_limit(await db.getItem("ratelimit:limit"))
    window = math.floor(request.now_ms / 60000)
    used = await db.incrCounter(f"ratelimit:{user_id}:{window}")

    if used > limit:
        require("console").warn(f"user {user_id} is over the limit ({used} > {limit})")
        return request.abort("rate limit exceeded")

    last_seen = {"at": request.now_ms, "channel": request.channels[0]}
    await db.set(f"ratelimit:{user_id}:last", last_seen, 1)
    request.message["rateLimitRemaining"] = limit - used
    return request.ok()
