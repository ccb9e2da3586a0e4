// Calls kvstore.<method>(...args) from the message and reports how it went.
// Runs with --limits unlimited for the budget but the profile's key/value limits.
const db = require("kvstore");

export default async (request) => {
  const { call, args } = request.message;
  const values = args.map((arg) => {
    if (arg === "$undefined") return undefined;
    if (arg === "$cyclic") { const o = { a: 1 }; o.self = o; return o; }
    if (arg === "$function") return () => 1;
    if (arg && arg.$repeat) return "x".repeat(arg.$repeat);
    return arg;
  });
  try {
    const result = await db[call](...values);
    request.message.result = result === undefined ? "$undefined" : result;
  } catch (error) {
    request.message.error = { name: error.name, message: error.message };
  }
  return request.ok();
};
