from pfunc import require

db = require("kvstore")


async def handler(request):
    count = await db.incr_counter("n")
    await db.set_item("s", "text")
    request.message["values"] = [count, await db.get_item("s")]
    return request.ok()
