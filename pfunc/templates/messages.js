// before-publish on chat channels: refuse empty messages, tidy the text, count each
// user's messages. One KV operation per message (the classic limit is 3).
const db = require("kvstore");

export default async (request) => {
  const text = String(request.message.text || "").trim();
  if (!text) {
    return request.abort("empty message");
  }
  const user = request.message.user || request.params.uuid || "anonymous";
  request.message.text = text;
  request.message.count = await db.incrCounter(`messages:${user}`);
  return request.ok();
};
