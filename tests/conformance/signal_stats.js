// after-signal: count signals per channel (signals are small; the handler cannot change them).
const db = require("kvstore");

export default async (request) => {
  await db.incrCounter(`signals:${request.channels[0]}`, 1);
  return request.ok();
};
