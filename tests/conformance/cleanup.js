// on-interval: a periodic job, completed with event.ok() (PubNub's interval examples).
const db = require("kvstore");

export default async (event) => {
  const runs = await db.incrCounter("cleanup:runs", 1);
  console.log(`cleanup run ${runs}`);
  return event.ok();
};
