def handler(request, response):
    return response.send({"x": float("nan")})
