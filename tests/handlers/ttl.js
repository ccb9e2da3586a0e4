// "set" stores a value with a 5-minute TTL and bumps a counter; anything else reads both.
const db = require("kvstore");

export default async (request) => {
  if (request.message.action === "set") {
    await db.set("short-lived", { hello: "world" }, 5);
    await db.incrCounter("long-lived");
    return request.ok();
  }
  request.message.value = await db.get("short-lived");
  request.message.counter = await db.getCounter("long-lived");
  return request.ok();
};
