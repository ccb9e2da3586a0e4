// before-publish-file: refuse executables and tag the rest (request.message is the file
// message: its text and file {id, name}).
export default (request) => {
  const name = request.message.file.name;
  if (/\.(exe|bat|sh)$/i.test(name)) return request.abort(`file type not allowed: ${name}`);
  request.message.message = { text: (request.message.message || {}).text, checked: true };
  return request.ok();
};
