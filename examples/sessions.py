"""User sessions (on-request), in Python: the same routes as sessions.js.

    pfunc run examples/sessions.py --method POST --path /login --body '{"userId":"u1"}'
"""

import json

from pfunc import require

db = require("kvstore")
uuid = require("uuid")

SESSION_MINUTES = 30


async def handler(request, response):
    route = f"{request.method} {request.path}"

    if route == "POST /login":
        user_id = json.loads(request.body or "{}").get("userId")
        if not user_id:
            return response.send({"error": "userId is required"}, 400)
        token = uuid.v4()
        session = {"userId": user_id, "createdAt": request.now_ms}
        await db.set(f"session:{token}", session, SESSION_MINUTES)
        return response.send({"token": token, "expiresInMinutes": SESSION_MINUTES}, 201)

    if route == "GET /validate":
        token = request.query.get("token")
        session = await db.get(f"session:{token}") if token else None
        if not session:
            return response.send({"valid": False}, 401)
        return response.send({"valid": True, "userId": session["userId"]})

    if route == "POST /logout":
        token = (await request.json())["token"]
        await db.removeItem(f"session:{token}")
        return response.send({"loggedOut": True})

    return response.send({"error": f"no route for {route}"}, 404)
