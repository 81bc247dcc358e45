// The "ceiling" peer: the least an HTTP ingest endpoint can do in Node on this machine. A plain
// node:http server that reads the body, JSON.parses it and answers 202 with a constant body; no
// authentication, validation, storage or fsync. Started as a child process by the benchmark.

import http from 'node:http';

const BODY = Buffer.from('{"Results":{}}');
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-length': '0' }).end();
      return;
    }
    res.writeHead(202, HEADERS).end(BODY);
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = server.address() as { port: number };
  console.log(`ceiling listening on http://127.0.0.1:${addr.port}`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
