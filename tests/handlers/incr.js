const db = require("kvstore");

export default async (request) => {
  request.message.value = await db.incrCounter("shared-counter");
  return request.ok();
};
