const db = require("kvstore");

export default async (request) => {
  await db.set("first", 1);
  await db.set("second", 2);
  await db.set("third", 3);
  await db.set("fourth", 4);
  return request.ok();
};
