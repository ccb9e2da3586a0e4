from pfunc import require

db = require("kvstore")


async def handler(request):
    await db.set("first", 1)
    await db.set("second", 2)
    await db.set("third", 3)
    await db.set("fourth", 4)
    return request.ok()
