// advanced_math + jsonpath (before-publish): drop positions far from the venue and pick
// fields with JSONPath, in the style of PubNub's geolocation examples.
const math = require("advanced_math");
const { JSONPath } = require("jsonpath");

const VENUE = { lat: 37.7749, lng: -122.4194 };

export default (request) => {
  const [lat] = JSONPath({ path: "$.position.lat", json: request.message });
  const [lng] = JSONPath({ path: "$.position.lng", json: request.message });
  const miles = math.getDistance(VENUE.lat, VENUE.lng, lat, lng);
  if (miles > 1) return request.abort(`outside the venue (${miles.toFixed(1)} miles)`);
  request.message.near = true;
  return request.ok();
};
