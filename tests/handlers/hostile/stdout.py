import os


def handler(request, response):
    print("hello from print")
    os.write(1, b'{"op": "done", "completion": {"kind": "abort"}}\n')
    return response.send({"pid": os.getpid()})
