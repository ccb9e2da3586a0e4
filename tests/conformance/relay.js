// pubnub.publish from a signal handler: PubNub's documented pattern of turning a
// lightweight signal into a full message on another channel (before-signal).
const pubnub = require("pubnub");

export default async (request) => {
  const [status, text] = await pubnub.publish({
    channel: `${request.channels[0]}.log`,
    message: { typing: request.message.t === 1 },
  });
  console.log(`Publish Status: ${status}:${text}`);
  return request.ok();
};
