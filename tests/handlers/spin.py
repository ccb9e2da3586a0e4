def handler(request, response):
    while True:
        pass
