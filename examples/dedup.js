// Message de-duplication (before-publish): drop a message identical to one the same
// user sent in the last 10 minutes.
//
//   pfunc run examples/dedup.js --message '{"userId":"u1","text":"hello"}'
//
// The fingerprint is the SHA-256 of the user and text (base64, as PubNub's crypto
// module returns it); remembering it costs one get and one set.
const db = require("kvstore");
const crypto = require("crypto");

const REMEMBER_MINUTES = 10;

export default async (request) => {
  const { userId, text } = request.message ?? {};
  if (typeof userId !== "string" || typeof text !== "string") {
    return request.ok(); // not a chat message from a user: nothing to compare it with
  }
  const fingerprint = await crypto.sha256(JSON.stringify([userId, text]));
  const key = `dedup:${fingerprint}`;

  const seen = await db.get(key);
  if (seen) {
    console.log(`duplicate of a message first seen at ${new Date(seen.at).toISOString()}`);
    return request.abort("duplicate message");
  }

  await db.set(key, { at: Date.now() }, REMEMBER_MINUTES);
  request.message.fingerprint = fingerprint;
  return request.ok();
};
