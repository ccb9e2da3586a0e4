// Drives the official PubNub JavaScript SDK for pfunc's tests: one Node process for the
// whole test session. Reads one JSON command per line on stdin and answers one JSON line
// on stdout: {"id", "ok": true, "result"} or {"id", "ok": false, "error"}.
//
// Commands: client (make a PubNub instance with a listener that records every event),
// call (await any SDK method with one argument object, or `positional` arguments),
// sendFile and downloadFile (bytes as base64), subscribe, unsubscribeAll, events (what
// the listener recorded), destroy.
"use strict";

const readline = require("readline");
const PubNub = require("pubnub");

const clients = new Map(); // name -> { pubnub, events }

function record(events, kind) {
  return (event) => events.push({ kind, event: JSON.parse(JSON.stringify(event)) });
}

const commands = {
  client({ name, publishKey, subscribeKey, userId, origin, options }) {
    const pubnub = new PubNub(Object.assign({
      publishKey, subscribeKey, userId, origin, ssl: false, logVerbosity: false,
      heartbeatInterval: 0,
    }, options || {}));
    const events = [];
    pubnub.addListener({
      message: record(events, "message"),
      signal: record(events, "signal"),
      presence: record(events, "presence"),
      messageAction: record(events, "messageAction"),
      file: record(events, "file"),
      objects: record(events, "objects"),
      status: record(events, "status"),
    });
    clients.set(name, { pubnub, events });
    return { version: PubNub.version || null };
  },
  async call({ client, method, args, positional }) {
    const { pubnub } = clients.get(client);
    // "channelGroups.addChannels": a method of one of the SDK's namespaces.
    const [owner, name] = method.includes(".")
      ? [pubnub[method.split(".")[0]], method.split(".")[1]]
      : [pubnub, method];
    // `positional`: a method taking plain arguments (setToken(token), parseToken(token)).
    if (positional) return await owner[name](...positional);
    // No arguments means none at all: time() takes a callback as its first one.
    return Object.keys(args || {}).length ? await owner[name](args) : await owner[name]();
  },
  // Files carry bytes: sent and returned as base64, since the protocol is JSON lines.
  async sendFile({ client, base64, name, mimeType, args }) {
    const file = { data: Buffer.from(base64, "base64"), name, mimeType };
    return await clients.get(client).pubnub.sendFile(Object.assign({ file }, args));
  },
  async downloadFile({ client, args }) {
    const file = await clients.get(client).pubnub.downloadFile(args);
    const bytes = await file.toBuffer();
    return { name: file.name, mimeType: file.mimeType, base64: bytes.toString("base64") };
  },
  subscribe({ client, channels, withPresence, channelGroups }) {
    clients.get(client).pubnub.subscribe({ channels, channelGroups, withPresence: !!withPresence });
    return null;
  },
  unsubscribeAll({ client }) {
    clients.get(client).pubnub.unsubscribeAll();
    return null;
  },
  events({ client }) {
    return clients.get(client).events;
  },
  destroy({ client }) {
    const entry = clients.get(client);
    if (entry) {
      entry.pubnub.unsubscribeAll();
      entry.pubnub.stop && entry.pubnub.stop();
      entry.pubnub.destroy && entry.pubnub.destroy();
      clients.delete(client);
    }
    return null;
  },
};

const input = readline.createInterface({ input: process.stdin });
input.on("line", async (line) => {
  const command = JSON.parse(line);
  let answer;
  try {
    const result = await commands[command.op](command);
    answer = { id: command.id, ok: true, result: result === undefined ? null : result };
  } catch (error) {
    answer = {
      id: command.id,
      ok: false,
      error: {
        message: String((error && error.message) || error),
        status: error && error.status ? JSON.parse(JSON.stringify(error.status)) : null,
      },
    };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
input.on("close", () => process.exit(0));
