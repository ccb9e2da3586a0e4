function explode(value) {
  return value.missing.field;
}

export default (request) => {
  return explode(request.message);
};
