// Rate limiting (before-publish): at most 10 messages per user per minute.
//
//   pfunc run examples/rate_limit.js --message '{"userId":"u1","text":"hi"}'
//
// Three KV operations per delivered message, the whole classic budget:
//   1. getItem  - the configured limit (a setting that is no positive number: 10)
//   2. incrCounter - this user's count in the current one-minute window (atomic)
//   3. set      - when the user was last seen, kept for one minute
const db = require("kvstore");

const DEFAULT_LIMIT = 10;

export default async (request) => {
  const userId = request.message?.userId;
  if (typeof userId !== "string" || !userId) {
    return request.abort("message has no userId");
  }

  const configured = Number(await db.getItem("ratelimit:limit"));
  const limit = Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_LIMIT;
  const window = Math.floor(Date.now() / 60000);
  const used = await db.incrCounter(`ratelimit:${userId}:${window}`);

  if (used > limit) {
    console.warn(`user ${userId} is over the limit (${used} > ${limit})`);
    return request.abort("rate limit exceeded");
  }

  await db.set(`ratelimit:${userId}:last`, { at: Date.now(), channel: request.channels[0] }, 1);
  request.message.rateLimitRemaining = limit - used;
  return request.ok();
};
