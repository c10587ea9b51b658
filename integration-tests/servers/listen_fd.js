// Serves HTTP on an inherited listening socket, file descriptor LISTEN_FD
// (exec_handoff.py hands it over). Each response names the process in X-Pid.
const http = require("http");

const fd = Number(process.env.LISTEN_FD);
http
  .createServer((req, res) => {
    const body = `${req.url} from ${process.pid}\n`;
    res.writeHead(200, {
      "Content-Type": "text/plain",
      "Content-Length": Buffer.byteLength(body),
      "X-Pid": String(process.pid),
    });
    res.end(body);
  })
  .listen({ fd }, () => console.log(`listening on fd ${fd}`));
