// after-publish-file: record each shared file (the message is already delivered).
const db = require("kvstore");

export default async (request) => {
  const { id, name } = request.message.file;
  await db.set(`file:${id}`, { name, channel: request.channels[0] });
  return request.ok();
};
