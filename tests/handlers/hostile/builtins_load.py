from pfunc import require

uuid = require("uuid")
jwt = require("jwt")


def handler(request, response):
    token = jwt.sign({"n": request.query.get("n")}, "secret-key-for-tests")
    decoded = jwt.verify(token, "secret-key-for-tests")
    return response.send({"id": uuid.v4(), "n": decoded["n"]})
