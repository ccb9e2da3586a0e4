"""Rate limiting (before-publish), in Python: the same logic as rate_limit.js.

    pfunc run examples/rate_limit.py --message '{"userId":"u1"}'
"""

import math

from pfunc import require

db = require("kvstore")
DEFAULT_LIMIT = 10


async def handler(request):
    user_id = request.message.get("userId")
    if not user_id:
        return request.abort("message has no userId")

    configured = await db.getItem("ratelimit:limit")
    limit = int(configured) if configured else DEFAULT_LIMIT
    window = math.floor(request.now_ms / 60000)
    used = await db.incrCounter(f"ratelimit:{user_id}:{window}")

    if used > limit:
        require("console").warn(f"user {user_id} is over the limit ({used} > {limit})")
        return request.abort("rate limit exceeded")

    await db.set(f"ratelimit:{user_id}:last", {"at": request.now_ms, "channel": request.channels[0]}, 1)
    request.message["rateLimitRemaining"] = limit - used
    return request.ok()
