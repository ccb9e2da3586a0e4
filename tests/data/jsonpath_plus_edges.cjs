// Writes tests/data/jsonpath_plus_edges.json: edge cases of jsonpath-plus (the library
// PubNub's jsonpath module is, "versions 9.0.0+"), answered by each version given, kept
// where all agree. With each version installed by npm in a folder of its own:
//   node jsonpath_plus_edges.cjs jp9/node_modules/jsonpath-plus jp10/... > jsonpath_plus_edges.json
const path = require('path');
const libs = process.argv.slice(2).map((folder) => require(path.resolve(folder)));
const json = {
  users: [{ name: 'ann', tags: ['a', 'b'], age: 31 }, { name: 'bob', tags: [], age: null }],
  title: 'hello',
  grid: [[1, 2], [3, [4, 5]], 'xy', null, true, 0],
  'a.b': { c: 1 },
  empty: {},
  nested: { deep: { deeper: { value: 'v', list: [10, 20, 30] } } },
};
const paths = [
  '$.users[-1].name', '$.users[-1]', '$.grid[-2]', '$.users[(@.length-1)].name', '$.users[(@.length-3)]',
  '$..[0]', '$..length', '$..tags[0]', '$..name[0]', '$..[1]', '$..*', '$..name', '$..[-1:]', '$..list[-1:]',
  '$.title.length', '$.title[0]', '$.grid[2][1]', '$.grid[2].length', '$..grid[2]', '$..value.length',
  'users[0].name', 'title', 'users[*].name', '.users[0].name', 'users..name', '$',
  '$.grid[*]@number()', '$.grid[*]@string()', '$.grid[*]@null()', '$.grid[*]@array()', '$.grid[*]@object()',
  '$.grid[*]@scalar()', '$.grid[*]@boolean()', '$.grid[*]@integer()', '$.users[*].age@null()',
  "$['a.b'].c", '$["a.b"]', '$.empty.*', '$.empty..*', '$..deeper.list[1:]', '$..list[::2]', '$..list[-2:]',
  '$..list[:-1]', '$.nested..value', '$.nested.*~', '$..deep^', '$..users[?(@.age > 30)].name',
  '$..users[?(@.tags.length === 0)].name', '$.users[0,1].name', '$.users[0].tags[-1]', '$.users.0.name',
  '$.grid.0', '$.grid[0][-1]', '$..[?(@ === 5)]', '$..*@string()',
  '$.title[(@.length-1)]', '$.users[0].name[(@.length-1)]', '$..', '$.users..', '$..*@null()',
  '$.users[1].age..', '$..age',
];
const arrays = [['$', 'users', 0, 'name'], ['$', 'nested', 'deep'], ['users', 1, 'name'], ['$', 'grid', '*']];
const out = [];
function answer(JSONPath, jsonPath, resultType) {
  try { return JSONPath({ path: jsonPath, json, resultType }); } catch (e) { return 'THROWS'; }
}
for (const path of [...paths, ...arrays]) {
  const results = {};
  for (const resultType of ['value', 'path']) {
    const given = libs.map((lib) => JSON.stringify(answer(lib.JSONPath, path, resultType)));
    if (given.every((g) => g === given[0])) results[resultType] = JSON.parse(given[0]);
    else console.error('disagree', JSON.stringify(path), resultType, given.join(' | '));
  }
  if (Object.keys(results).length) out.push({ path, results });
}
console.log(JSON.stringify({ libraries: process.argv.slice(2).map((folder) => 'jsonpath-plus@' + require(path.resolve(folder, 'package.json')).version), json, cases: out }, null, 1));
