// jwt + uuid + codec/query_string + codec/auth (on-request): issue a session token for a
// form login, as PubNub's JWT examples do, and check it on the next request.
const jwt = require("jwt");
const uuid = require("uuid");
const query = require("codec/query_string");
const auth = require("codec/auth");

const SECRET = "conformance-secret-of-32-bytes!!";

export default (request, response) => {
  if (request.method === "POST") {
    const form = query.parse(request.body);
    const token = jwt.sign({ user: form.user, sid: uuid.v4() }, SECRET, { expiresIn: "1h" });
    return response.send({ token, basic: auth.basic(form.user, form.password) });
  }
  try {
    const claims = jwt.verify(request.query.token, SECRET);
    return response.send({ user: claims.user, sidIsUuid: uuid.validate(claims.sid) });
  } catch (error) {
    return response.send({ error: error.name, reason: error.message }, 401);
  }
};
