import os
import time


def handler(request, response):
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    return response.send({"child": child})
