// on-interval: count ticks and publish a heartbeat that other functions and clients can see.
//
//   pfunc run examples/heartbeat.js --event on-interval
const db = require("kvstore");
const pubnub = require("pubnub");

export default async (event) => {
  const beat = await db.incrCounter("heartbeat:count");
  await pubnub.publish({ channel: "heartbeat", message: { beat, at: Date.now() } });
  return event.ok();
};
