// pubnub: App Context and Access Manager from a function (on-request): register a member
// and hand them a token for the room, as PubNub's access-control guides describe.
const pubnub = require("pubnub");

export default async (request, response) => {
  const { user, room } = JSON.parse(request.body);
  await pubnub.objects.setChannelMembers({ channel: room, uuids: [user] });
  const token = await pubnub.grantToken({
    ttl: 15,
    authorized_uuid: user,
    resources: { channels: { [room]: { read: true, write: true } } },
  });
  const parsed = pubnub.parseToken(token);
  return response.send({ ttl: parsed.ttl, user: parsed.authorized_uuid, room: Object.keys(parsed.resources.channels) });
};
