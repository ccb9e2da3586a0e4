from pfunc import require

db = require("kvstore")
jwt = require("jwt")
console = require("console")


def handler(request):
    # A synchronous handler: module calls give awaitables; .result() waits for them.
    count = db.incrCounter("sync-hits").result()
    token = jwt.sign({"sub": "u1"}, "secret")
    console.log("count", count, {"token": jwt.verify(token, "secret")["sub"]})
    request.message["count"] = count
    return request.ok()
