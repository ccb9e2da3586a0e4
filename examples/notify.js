// before-publish on notify.<user>: count the user's unread notifications and stamp the message.
const db = require("kvstore");

export default async (request) => {
  const user = request.channels[0].split(".")[1];
  request.message.unread = await db.incrCounter(`unread:${user}`);
  request.message.at = new Date().toISOString();
  return request.ok();
};
