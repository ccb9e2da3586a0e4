// after-publish on chat channels: tell each @mentioned user, through their own channel.
// Together with notify.js (before-publish on notify.*) this is a chain of two functions:
//
//   pfunc publish chat.room '{"userId":"ada","text":"lunch? @bob @cy"}'
//
// Each publish is a PubNub network call, so it counts against the 3-operation budget:
// at most 3 mentions are notified per message. A publish (not a fire, which reaches
// functions only) so the user's app, subscribed to notify.<user>, receives it.
const pubnub = require("pubnub");

export default async (request) => {
  const text = String(request.message.text || "");
  const mentioned = [...new Set(text.match(/@[a-z0-9_]+/gi) || [])].map((m) => m.slice(1));
  for (const user of mentioned.slice(0, 3)) {
    await pubnub.publish({
      channel: `notify.${user}`,
      message: { from: request.message.userId, channel: request.channels[0], text },
    });
  }
  if (mentioned.length > 3) {
    console.warn(`${mentioned.length - 3} mention(s) not notified: 3 operations per execution`);
  }
  return request.ok();
};
