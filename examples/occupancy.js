// after-presence: keep each channel's occupancy and who joined last in the KV store.
//
//   pfunc run examples/occupancy.js --action join --uuid ada --occupancy 3 --channel lobby
const db = require("kvstore");

export default async (request) => {
  const { action, uuid, occupancy } = request.message;
  const channel = request.channels[0];
  await db.set(`occupancy:${channel}`, { count: occupancy, last: { action, uuid } }, 60);
  console.log(`${uuid} ${action} ${channel}: ${occupancy} here`);
  return request.ok();
};
