// after-signal on typing.*: count typing signals per channel.
const db = require("kvstore");

export default async (request) => {
  await db.incrCounter(`signals:${request.channels[0]}`);
  return request.ok();
};
