// before-signal on typing.*: signals are tiny (30 bytes in the classic profile), so
// accept only {"t":1} or {"t":0} and drop anything else before it reaches subscribers.
//
//   pfunc signal typing.room '{"t":1}'
//   pfunc run examples/typing.js --event before-signal --channel typing.room --message '{"t":1}'
export default (request) => {
  const { t } = request.message;
  if (t !== 0 && t !== 1) {
    return request.abort("a typing signal carries t: 0 or 1");
  }
  return request.ok();
};
