// Node http hello server for the benchmark: PORT=18080 node node_server.js
const http = require("http");
const body = Buffer.from("hello");
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 75000;
server.listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});
