// kvstore: a per-user message counter and the last message kept for an hour
// (the documented get/set/incrCounter/getCounter calls, with a TTL in minutes).
const db = require("kvstore");

export default async (request) => {
  const user = request.message.user;
  const count = await db.incrCounter(`messages:${user}`, 1);
  await db.set(`last:${user}`, { text: request.message.text }, 60);
  request.message.count = count;
  return request.ok();
};
