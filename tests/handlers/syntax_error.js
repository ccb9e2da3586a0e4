const db = require("kvstore");

export default async (request) => {
  const x = ;
  return request.ok();
};
