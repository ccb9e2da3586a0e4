"""User sessions (on-request), in Python: the same routes as sessions.js.

    pfunc run examples/sessions.py --method POST --path /login --body '{"userId":"u1"}'
"""

import json

from pfunc import require

db = require("kvstore")
uuid = require("uuid")

SESSION_MINUTES = 30


def json_object(body):
    """The body's JSON object; {} when it is none (not JSON, null, a list...)."""
    try:
        data = json.loads(body or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def handler(request, response):
    route = f"{request.method} {request.path}"

    if route == "POST /login":
        user_id = json_object(request.body).get("userId")
        if not isinstance(user_id, str) or not user_id:
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
        try:
            body = json.loads(request.body or "{}")
        except ValueError:
            return response.send({"error": "body must be JSON"}, 400)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return response.send({"error": "token is required"}, 400)
        await db.removeItem(f"session:{token}")
        return response.send({"loggedOut": True})

    return response.send({"error": f"no route for {route}"}, 404)
