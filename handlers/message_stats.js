// after-publish on chat channels: count delivered messages per channel and per day.
// Runs on a copy after delivery, so it cannot slow down or change the message.
const db = require("kvstore");

export default async (request) => {
  const channel = request.channels[0];
  const day = new Date().toISOString().slice(0, 10);
  await db.incrCounter(`stats:${channel}`);
  await db.incrCounter(`stats:${channel}:${day}`);
  return request.ok();
};
