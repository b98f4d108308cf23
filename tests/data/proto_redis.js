// ioredis against faultline's proxy (tests/test_proto_redis.c).
// Usage: node proto_redis.js PORT; prints a line per call:
// "ok VALUE" or "NAME: MESSAGE", then the pipeline's replies.
const path = require("path");
const Redis = require(path.join(__dirname, "..", ".npm", "node_modules", "ioredis"));

async function main() {
  const r = new Redis({ host: "127.0.0.1", port: Number(process.argv[2]),
                        maxRetriesPerRequest: 0, lazyConnect: true });
  await r.connect();
  const show = async (f) => {
    try {
      console.log("ok", await f());
    } catch (e) {
      console.log(`${e.name}: ${e.message}`);
    }
  };
  await show(() => r.get("k"));
  await show(() => r.set("k", "v"));
  const res = await r.pipeline().incr("m").get("k").incr("m").exec();
  for (const [err, val] of res)
    console.log(err ? `${err.name}: ${err.message}` : `ok ${val}`);
  r.disconnect();
}
main().catch((e) => { console.log("fatal", e); process.exit(1); });
