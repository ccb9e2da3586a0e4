// Configuration (on-request): read and change settings that other functions use.
// pfunc.toml serves it at /v1/blocks/sub-key/<subscribe_key>/config (its own path "/").
//
//   pfunc run examples/config.js
//   pfunc run examples/config.js --method PUT --body '{"maxLength":200}'
//   pfunc run examples/config.js --method DELETE
//
// Settings live under one key, so a reader pays one KV operation for all of them.
const db = require("kvstore");

const KEY = "config:chat";
const DEFAULTS = { maxLength: 500, slowModeSeconds: 0, bannedWords: [] };
const CHECKS = {
  maxLength: (v) => Number.isInteger(v) && v > 0 && v <= 32000,
  slowModeSeconds: (v) => Number.isInteger(v) && v >= 0 && v <= 3600,
  bannedWords: (v) => Array.isArray(v) && v.every((word) => typeof word === "string"),
};

export default async (request, response) => {
  if (request.path !== "/") {
    return response.send({ error: "not found" }, 404);
  }

  if (request.method === "GET") {
    const stored = await db.get(KEY);
    return response.send({ ...DEFAULTS, ...stored });
  }

  if (request.method === "PUT") {
    let changes;
    try {
      changes = await request.json();
    } catch (error) {
      return response.send({ error: "body must be JSON" }, 400);
    }
    if (typeof changes !== "object" || changes === null || Array.isArray(changes)) {
      return response.send({ error: "body must be a JSON object of settings" }, 400);
    }
    // Own names only: "toString" or "__proto__" are no settings, though CHECKS inherits them.
    const invalid = Object.keys(changes).filter((name) => !Object.hasOwn(CHECKS, name) || !CHECKS[name](changes[name]));
    if (invalid.length > 0) {
      return response.send({ error: "invalid settings", fields: invalid }, 422);
    }
    if (Object.keys(changes).length === 0) {
      return response.send({ error: "no settings to change" }, 422);
    }
    const current = { ...DEFAULTS, ...(await db.get(KEY)) };
    const updated = { ...current, ...changes };
    await db.set(KEY, updated, 525600);
    console.log(`config changed: ${Object.keys(changes).join(", ")}`);
    return response.send(updated);
  }

  if (request.method === "DELETE") {
    await db.removeItem(KEY);
    return response.send(DEFAULTS);
  }

  response.headers.allow = "GET, PUT, DELETE";
  return response.send({ error: `method ${request.method} not allowed` }, 405);
};
