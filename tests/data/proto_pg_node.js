// A node-postgres (pg@8) client for tests/test_proto_pg.c, run under
// `faultline exec --proxy postgres=...` with a pg_error fault. Prints one
// line per call: `error CODE MESSAGE` or `value V`. The first query is a
// simple Query, the second an extended one (with a parameter).
// Usage: NODE_PATH=tests/.npm/node_modules node proto_pg_node.js PORT
const { Client } = require("pg");

async function main(port) {
  const client = new Client({ host: "127.0.0.1", port, user: "postgres",
                              database: "postgres" });
  client.on("error", () => {}); // a FATAL also arrives as an event
  try {
    await client.connect();
  } catch (e) {
    console.log("error", e.code, e.message);
    return;
  }
  const calls = [["select 6 * 7 as v", []], ["select $1::int as v", [2]]];
  for (const [sql, args] of calls) {
    try {
      const r = await client.query(sql, args);
      console.log("value", r.rows[0].v);
    } catch (e) {
      console.log("error", e.code, e.message);
    }
  }
  await client.end().catch(() => {});
}

main(Number(process.argv[2]));
