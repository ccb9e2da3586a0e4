// Auto Moderation before publish, as PubNub's ugc module page shows it: block what the
// configuration flags, apply its masks, let the rest through.
const ugc = require("ugc");

export default async (request) => {
  const result = await ugc.moderateMessage({
    configId: "5a1d3c8e-7c2b-4f0e-9d61-2b8f7f0a9c11",
    message: request.message,
    channel: request.channels[0],
    userId: request.params.uuid,
  });
  if (result.flagged && result.actions.includes("block")) {
    return request.abort("blocked by moderation");
  }
  if (result.transform && result.transform.message) {
    request.message = result.transform.message;
  }
  return request.ok();
};
