import asyncio

from pfunc import require

kv = require("kvstore")


async def later():
    await asyncio.sleep(0)
    await kv.incr_counter("late")


async def handler(request, response):
    asyncio.get_running_loop().create_task(later())
    return response.send("started")
