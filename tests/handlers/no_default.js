export const handler = (request) => request.ok();
