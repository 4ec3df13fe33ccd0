// s3rver.js - start the S3-compatible test server (npm @20minutes/s3rver,
// which checks SigV4 signatures) on 127.0.0.1:PORT with data in DIR and the
// buckets named after them; prints "ready" once it listens.
// Usage: node s3rver.js PORT DIR BUCKET...
const S3rver = require('@20minutes/s3rver');
const [port, dir, ...buckets] = process.argv.slice(2);
new S3rver({
  address: '127.0.0.1', port: Number(port), directory: dir, silent: false,
  configureBuckets: buckets.map((name) => ({ name })),
}).run().then(() => console.log('ready'), (e) => { console.error(e); process.exit(1); });
