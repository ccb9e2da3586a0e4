// on-request at /v1/blocks/sub-key/<subscribe_key>/api/...:
//   GET  /api/messages?user=ada  how many messages a user sent
//   PUT  /api/motd               set the message of the day (JSON body {"text": "..."})
//   GET  /api/motd               read it
const db = require("kvstore");

export default async (request, response) => {
  if (request.method === "GET" && request.path === "/messages") {
    const user = request.query.user;
    if (!user) return response.send({ error: "pass ?user=<name>" }, 400);
    return response.send({ user, messages: await db.getCounter(`messages:${user}`) });
  }
  if (request.path === "/motd" && request.method === "PUT") {
    const { text } = await request.json();
    if (typeof text !== "string" || !text) return response.send({ error: "text required" }, 422);
    await db.set("motd", { text, at: new Date().toISOString() }, 1440);
    return response.send({ saved: true });
  }
  if (request.path === "/motd" && request.method === "GET") {
    const motd = await db.get("motd");
    return motd ? response.send(motd) : response.send({ error: "no message of the day" }, 404);
  }
  return response.send({ error: `no route for ${request.method} ${request.path}` }, 404);
};
