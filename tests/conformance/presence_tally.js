// after-presence: keep an occupancy tally per channel, as PubNub's presence examples do
// (request.message holds action, uuid, occupancy and timestamp).
const db = require("kvstore");

export default async (request) => {
  const { action, uuid, occupancy } = request.message;
  await db.set(`occupancy:${request.channels[0]}`, { occupancy, last: `${uuid} ${action}` });
  return request.ok();
};
