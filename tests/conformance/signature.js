// crypto + codec/base64 + utils: verify an HMAC-signed webhook and answer (on-request),
// as PubNub's crypto examples do; the signature is URL-safe base64.
const crypto = require("crypto");
const base64 = require("codec/base64");
const utils = require("utils");

export default async (request, response) => {
  const expected = await crypto.hmac(base64.btoa("shared-key"), request.body, crypto.ALGORITHM.HMAC_SHA256);
  if (request.headers["x-signature"] !== expected) {
    return response.send({ error: "bad signature" }, 401);
  }
  const amount = JSON.parse(request.body).amount;
  return response.send({ ok: true, numeric: utils.isNumeric(amount) });
};
