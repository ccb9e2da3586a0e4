export default (request) => {
  const hoard = [];
  for (;;) {
    hoard.push("x".repeat(1024) + hoard.length);
  }
};
