import os
import threading


def spin():
    while True:
        pass


def handler(request, response):
    threading.Thread(target=spin, daemon=True).start()
    return response.send({"pid": os.getpid()})
