// h2_origin.js - an https:// origin that speaks HTTP/2 (and HTTP/1.1), for
// the tests: serves DIR with Range, ETag and If-Match (412), HEAD; injects
// faults (GET /_ctl/fail?n=N&code=C: the next N object requests fail with
// C) and counts: requests by protocol, TLS sessions (connections), the most
// streams open at once on one session (multiplexing), GETs, HEADs, bytes
// (GET /_ctl/stats as JSON).  Prints "port N" once it listens.
// Usage: node h2_origin.js PORT DIR KEY.pem CERT.pem   (PORT 0: any)
'use strict';
const http2 = require('http2');
const fs = require('fs');
const path = require('path');
const [port, dir, key, cert] = process.argv.slice(2);
const st = { h2: 0, h1: 0, sessions: 0, max_streams: 0, gets: 0, heads: 0, bytes: 0, faults: 0 };
let failN = 0, failCode = 503;

const server = http2.createSecureServer({
  key: fs.readFileSync(key), cert: fs.readFileSync(cert), allowHTTP1: true,
});
server.on('session', (s) => {
  st.sessions++;
  s.open = 0;
  s.on('stream', (stream) => {
    s.open++;
    st.max_streams = Math.max(st.max_streams, s.open);
    stream.on('close', () => { s.open--; });
  });
});
server.on('request', (req, res) => {
  const url = new URL(req.url, 'https://x');
  if (url.pathname === '/_ctl/stats') {
    res.end(JSON.stringify(st) + '\n');
    return;
  }
  if (url.pathname === '/_ctl/fail') {
    failN = Number(url.searchParams.get('n') || 1);
    failCode = Number(url.searchParams.get('code') || 503);
    res.end('ok\n');
    return;
  }
  if (req.httpVersion === '2.0') st.h2++; else st.h1++;
  const head = req.method === 'HEAD';
  if (head) st.heads++; else st.gets++;
  if (failN > 0) {
    failN--;
    st.faults++;
    res.writeHead(failCode, { 'retry-after': '0' });
    res.end();
    return;
  }
  const file = path.join(dir, decodeURIComponent(url.pathname));
  let s;
  try { s = fs.statSync(file); } catch (e) { res.writeHead(404); res.end(); return; }
  if (!s.isFile()) { res.writeHead(404); res.end(); return; }
  const etag = `"${s.ino}-${s.size}-${Math.floor(s.mtimeMs)}"`;
  const ifm = req.headers['if-match'];
  if (ifm && ifm !== etag) { res.writeHead(412); res.end(); return; }
  let start = 0, end = s.size - 1, code = 200;
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range || '');
  if (m) {
    start = Number(m[1]); end = Math.min(Number(m[2]), s.size - 1); code = 206;
    if (start > end) { res.writeHead(416); res.end(); return; }
  }
  const hdrs = { etag, 'content-length': end - start + 1, 'accept-ranges': 'bytes' };
  if (code === 206) hdrs['content-range'] = `bytes ${start}-${end}/${s.size}`;
  res.writeHead(code, hdrs);
  if (head || s.size === 0) { res.end(); return; }
  st.bytes += end - start + 1;
  fs.createReadStream(file, { start, end }).pipe(res);
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`port ${server.address().port}`);
});
