// Team rooms over App Context, Access Manager and channel groups: an admin creates a room
// with its members; a member asks to join and gets a token for exactly that room; the
// team's rooms are one channel group a client subscribes to at once.
//
//   POST /rooms {room, name, members: [uuid...]}   -> 201 {room, members}
//   POST /join  {uuid, room}                       -> 200 {token, room, ttl} or 403
//   GET  /rooms                                    -> 200 {rooms: [...]}
const pubnub = require("pubnub");

const GROUP = "team-rooms";
const TOKEN_MINUTES = 60;
// A user id or room a filter can quote and a channel can carry.
const NAME = /^[\w.@-]+$/;
const isName = (value) => typeof value === "string" && NAME.test(value);

async function createRoom(body, response) {
  if (!isName(body.room) || !Array.isArray(body.members) || body.members.length === 0) {
    return response.send({ error: "room and members are required" }, 400);
  }
  // Checked before the first call: a bad member would otherwise leave half a room.
  if (!body.members.every(isName)) {
    return response.send({ error: "members are user ids (letters, digits, _ . @ -)" }, 400);
  }
  await pubnub.objects.setChannelMetadata({
    channel: body.room,
    data: { name: body.name || body.room, type: "team-room" },
  });
  await pubnub.objects.setChannelMembers({ channel: body.room, uuids: body.members });
  await pubnub.channelGroups.addChannels({ channelGroup: GROUP, channels: [body.room] });
  return response.send({ room: body.room, members: body.members }, 201);
}

async function join(body, response) {
  if (!body.uuid || !body.room) return response.send({ error: "uuid and room are required" }, 400);
  if (!isName(body.uuid) || !isName(body.room)) {
    return response.send({ error: "uuid and room are names (letters, digits, _ . @ -)" }, 400);
  }
  const members = await pubnub.objects.getChannelMembers({
    channel: body.room,
    filter: `uuid.id == '${body.uuid}'`,
  });
  if (members.data.length === 0) {
    return response.send({ error: `${body.uuid} is not a member of ${body.room}` }, 403);
  }
  const token = await pubnub.grantToken({
    ttl: TOKEN_MINUTES,
    authorized_uuid: body.uuid,
    resources: {
      channels: { [body.room]: { read: true, write: true } },
      groups: { [GROUP]: { read: true } },
    },
  });
  const granted = pubnub.parseToken(token); // local: no operation spent
  return response.send({ token, room: body.room, ttl: granted.ttl });
}

export default async (request, response) => {
  let body;
  try {
    body = JSON.parse(request.body || "{}");
  } catch (error) {
    return response.send({ error: "body must be JSON" }, 400);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return response.send({ error: "body must be a JSON object" }, 400);
  }
  if (request.method === "POST" && request.path === "/rooms") return createRoom(body, response);
  if (request.method === "POST" && request.path === "/join") return join(body, response);
  if (request.method === "GET" && request.path === "/rooms") {
    const listed = await pubnub.channelGroups.listChannels({ channelGroup: GROUP });
    return response.send({ rooms: listed.channels });
  }
  return response.send({ error: `no route for ${request.method} ${request.path}` }, 404);
};
