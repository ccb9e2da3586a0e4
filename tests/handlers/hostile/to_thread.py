import asyncio
import os


async def handler(request, response):
    total = await asyncio.to_thread(sum, [1, 2, 3])
    return response.send({"pid": os.getpid(), "total": total})
