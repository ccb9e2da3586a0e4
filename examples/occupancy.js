// after-presence: keep each channel's occupancy and its last change in the KV store.
//
//   pfunc run examples/occupancy.js --action join --uuid ada --occupancy 3 --channel lobby
//   pfunc run examples/occupancy.js --action interval --occupancy 40 --channel lobby
const db = require("kvstore");

export default async (request) => {
  const { action, uuid, occupancy } = request.message;
  const channel = request.channels[0];
  if (action === "interval") {
    // Above the keyset's announce_max PubNub sends one event per channel and interval,
    // naming no single user: it lists who joined, left or timed out since the last one.
    const { join = [], leave = [], timeout = [] } = request.message;
    await db.set(`occupancy:${channel}`, { count: occupancy, last: { action, join, leave, timeout } }, 60);
    console.log(`${channel}: ${occupancy} here, ${join.length} joined and ${leave.length + timeout.length} left`);
    return request.ok();
  }
  await db.set(`occupancy:${channel}`, { count: occupancy, last: { action, uuid } }, 60);
  console.log(`${uuid} ${action} ${channel}: ${occupancy} here`);
  return request.ok();
};
