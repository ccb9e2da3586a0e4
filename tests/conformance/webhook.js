// xhr + vault: forward a message to a webhook with a secret from the vault, the way
// PubNub's examples call outside services (after-publish: the message is already sent).
const xhr = require("xhr");
const vault = require("vault");

export default async (request) => {
  const token = await vault.get("WEBHOOK_TOKEN");
  const response = await xhr.fetch("https://hooks.example.com/notify", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ channel: request.channels[0], text: request.message.text }),
  });
  const answer = await response.json();
  console.log("webhook answered", response.status, answer.id);
  return request.ok();
};
