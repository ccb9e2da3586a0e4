def helper(message):
    return message["missing"]


def handler(request):
    return helper(request.message)
