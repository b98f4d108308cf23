// Drives `faultline serve` with the unmodified npm package
// toxiproxy-node-client, one step per run, so that the test checks each
// effect with redis-cli between steps. Prints one JSON line: what the
// client got back. Usage:
//   node toxiproxy_client.js API STEP ARGS...
//   create NAME LISTEN UPSTREAM | latency NAME MS | remove NAME TOXIC |
//   disable NAME | enable NAME | reset | version | get NAME
"use strict";
const path = require("path");
const { Toxiproxy } = require(path.join(
  __dirname, "..", ".npm", "node_modules", "toxiproxy-node-client"));

async function step(api, name, args) {
  const toxiproxy = new Toxiproxy(api);
  switch (name) {
    case "create": {
      const proxy = await toxiproxy.createProxy({
        name: args[0], listen: args[1], upstream: args[2] });
      return proxy.toJson();
    }
    case "latency": {
      const proxy = await toxiproxy.get(args[0]);
      const toxic = await proxy.addToxic({
        type: "latency", stream: "downstream", toxicity: 1,
        attributes: { latency: Number(args[1]), jitter: 0 } });
      return toxic.toJson();
    }
    case "remove": {
      const proxy = await toxiproxy.get(args[0]);
      const toxic = await proxy.getToxic(args[1]);
      await toxic.remove();
      return { removed: args[1] };
    }
    case "disable":
    case "enable": {
      const proxy = await toxiproxy.get(args[0]);
      const updated = await proxy.update({
        enabled: name === "enable", listen: proxy.listen,
        upstream: proxy.upstream });
      return updated.toJson();
    }
    case "reset":
      await toxiproxy.reset();
      return { reset: true };
    case "version":
      return { version: await toxiproxy.getVersion() };
    case "get":
      return (await toxiproxy.get(args[0])).toJson();
  }
  throw new Error("unknown step " + name);
}

step(process.argv[2], process.argv[3], process.argv.slice(4)).then(
  (out) => console.log(JSON.stringify(out)),
  (err) => {
    console.log(JSON.stringify({ error: String(err && err.message || err) }));
    process.exit(1);
  });
