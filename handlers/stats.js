// on-request: GET /stats?channel=chat reports what message_stats.js counted.
const db = require("kvstore");

export default async (request, response) => {
  const channel = request.query.channel;
  if (!channel) {
    return response.send({ error: "pass ?channel=<name>" }, 400);
  }
  const day = new Date().toISOString().slice(0, 10);
  const [total, today] = await Promise.all([
    db.getCounter(`stats:${channel}`),
    db.getCounter(`stats:${channel}:${day}`),
  ]);
  return response.send({ channel, total, today });
};
