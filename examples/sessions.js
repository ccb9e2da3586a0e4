// User sessions (on-request): log in, validate a token, log out.
//
//   pfunc run examples/sessions.js --method POST --path /login --body '{"userId":"u1"}'
//   pfunc run examples/sessions.js --path /validate --query token=<token>
//   pfunc run examples/sessions.js --method POST --path /logout --body '{"token":"<token>"}'
//
// A session lives in the KV store for 30 minutes under session:<token>.
const db = require("kvstore");
const uuid = require("uuid");

const SESSION_MINUTES = 30;

export default async (request, response) => {
  const route = `${request.method} ${request.path}`;

  if (route === "POST /login") {
    const userId = request.body.userId;
    if (typeof userId !== "string" || !userId) {
      return response.send({ error: "userId is required" }, 400);
    }
    const token = uuid.v4();
    await db.set(`session:${token}`, { userId, createdAt: Date.now() }, SESSION_MINUTES);
    return response.send({ token, expiresInMinutes: SESSION_MINUTES }, 201);
  }

  if (route === "GET /validate") {
    const token = request.query.token;
    const session = token ? await db.get(`session:${token}`) : null;
    if (!session) {
      return response.send({ valid: false }, 401);
    }
    return response.send({ valid: true, userId: session.userId });
  }

  if (route === "POST /logout") {
    let token;
    try {
      ({ token } = JSON.parse(request.body || "{}") ?? {});
    } catch (error) {
      return response.send({ error: "body must be JSON" }, 400);
    }
    if (typeof token !== "string" || !token) {
      return response.send({ error: "token is required" }, 400);
    }
    await db.removeItem(`session:${token}`);
    return response.send({ loggedOut: true });
  }

  return response.send({ error: `no route for ${route}` }, 404);
};
