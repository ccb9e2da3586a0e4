import asyncio
import os
import time


async def handler(request, response):
    await asyncio.sleep(1.7)  # near the end of a 2 s limit
    loop = asyncio.get_running_loop()
    for _ in range(6):  # still at work when the handler has answered: left running
        loop.run_in_executor(None, time.sleep, 5)
    return response.send({"pid": os.getpid()})
