const db = require("kvstore");

export default (request) => {
  db.set("fire-and-forget", { saved: true });
  db.incrCounter("background-hits").then((n) => console.log("counted", n));
  return request.ok();
};
