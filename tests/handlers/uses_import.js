// a comment
import db from "kvstore";

export default (request) => request.ok();
