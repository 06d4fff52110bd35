#!/usr/bin/env node
// Starts s3rver and a fault-injecting proxy in front of it, both on free loopback ports,
// for songd's S3 tests and benchmarks.
//
//   node --openssl-legacy-provider launch.js --dir /tmp/s3data --bucket songs [--bucket other]
//
// (s3rver's ListObjectsV2 continuation tokens use DES, in OpenSSL 3's legacy provider.)
//
// Prints one JSON line when both listen: {"s3rver": <port>, "proxy": <port>}, then runs
// until stdin closes (the test that started it went away) or SIGTERM.
//
// The proxy forwards everything to s3rver except requests matched by a fault rule:
//   POST /__faults  [{"method": "PUT", "query_has": "partNumber", "path_has": "x",
//                     "times": 2 (-1: always), "action": "status" | "error200" | "reset" | "hang",
//                     "status": 503, "code": "SlowDown", "message": "..."}]   (replaces)
//   GET  /__log     every request seen: [{"method", "url", "fault", "sha256_ok", "md5_ok"}]
//                   (sha256_ok / md5_ok: the body matched x-amz-content-sha256 / Content-MD5;
//                   absent when the request announced none or was not forwarded)
//   DELETE /__log   clears the log
// SONGD_S3RVER_VERBOSE=1 makes s3rver log every request and error to stdout/stderr.
// --constant-time-delete (benchmarks): s3rver's DeleteObject, after removing an object,
// lists each parent folder to see whether it became empty; with every job folder under one
// prefix that listing grows with the bucket and the delete of 100 000 jobs goes quadratic
// (hours). The flag replaces that check by rmdir, which fails on a non-empty folder: the
// same folders go, in constant time per key, as real S3 deletes.
// "status" answers with an S3 XML error; "error200" answers 200 with an <Error> body (as S3
// may for CompleteMultipartUpload); "reset" drops the connection (a network error); "hang"
// never answers (an S3 that went silent) until the next POST /__faults drops the connection.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const S3rver = require('s3rver');

function parseArgs(argv) {
  const args = { dir: null, buckets: [], constantTimeDelete: false };
  for (let i = 2; i < argv.length; i += 2) {
    if (argv[i] === '--constant-time-delete') {
      args.constantTimeDelete = true;
      i -= 1;
    } else if (argv[i] === '--dir') args.dir = argv[i + 1];
    else if (argv[i] === '--bucket') args.buckets.push(argv[i + 1]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.dir) throw new Error('--dir is required');
  return args;
}

function errorXml(code, message) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message><RequestId>FAULT${Date.now()}</RequestId></Error>`;
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function useConstantTimeDelete() {
  const FilesystemStore = require('s3rver/lib/stores/filesystem');
  FilesystemStore.prototype.deleteObject = async function deleteObject(bucket, key) {
    await Promise.all(['object', 'object.md5', 'metadata.json'].map((kind) =>
      fs.promises.unlink(this.getResourcePath(bucket, key, kind)).catch((err) => {
        if (err.code !== 'ENOENT') throw err;
      })));
    const parts = key.split('/');
    parts.pop();  // the last part is embedded into the file names
    for (; parts.length; parts.pop()) {
      try {
        await fs.promises.rmdir(path.join(this.getBucketPath(bucket), ...parts));
      } catch (err) {
        if (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') return;
        if (err.code !== 'ENOENT') throw err;  // gone already: a concurrent delete
      }
    }
  };
}

async function main() {
  const args = parseArgs(process.argv);
  if (args.constantTimeDelete) useConstantTimeDelete();
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: !process.env.SONGD_S3RVER_VERBOSE,
    directory: args.dir,
    configureBuckets: args.buckets.map((name) => ({ name })),
  });
  const s3Address = await server.run();

  let rules = [];
  let log = [];
  let hung = [];
  const proxy = http.createServer(async (req, res) => {
    if (req.url === '/__faults' && req.method === 'POST') {
      rules = JSON.parse(await readBody(req));
      for (const socket of hung) socket.destroy();
      hung = [];
      res.writeHead(204).end();
      return;
    }
    if (req.url === '/__log') {
      if (req.method === 'DELETE') log = [];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(log));
      return;
    }
    const [urlPath, query = ''] = req.url.split('?');
    const rule = rules.find((r) => r.times !== 0 &&
      (!r.method || r.method === req.method) &&
      (!r.query_has || query.includes(r.query_has)) &&
      (!r.path_has || decodeURIComponent(urlPath).includes(r.path_has)));
    log.push({ method: req.method, url: req.url, fault: rule ? rule.action : null });
    if (rule) {
      if (rule.times > 0) rule.times -= 1;
      if (rule.action === 'reset') {
        req.socket.destroy();
        return;
      }
      if (rule.action === 'hang') {
        req.resume();  // read the body, answer nothing
        hung.push(req.socket);
        return;
      }
      await readBody(req);
      const status = rule.action === 'error200' ? 200 : (rule.status || 503);
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(errorXml(rule.code || 'SlowDown', rule.message || 'injected fault'));
      return;
    }
    // S3 checks these, s3rver does not: verify the announced body hashes on the way through.
    const entry = log[log.length - 1];
    const sha256 = crypto.createHash('sha256');
    const md5 = crypto.createHash('md5');
    req.on('data', (chunk) => { sha256.update(chunk); md5.update(chunk); });
    req.on('end', () => {
      const announced = req.headers['x-amz-content-sha256'];
      if (announced && /^[0-9a-f]{64}$/.test(announced)) {
        entry.sha256_ok = sha256.digest('hex') === announced;
      }
      if (req.headers['content-md5']) {
        entry.md5_ok = md5.digest('base64') === req.headers['content-md5'];
      }
    });
    const upstream = http.request({
      host: '127.0.0.1',
      port: s3Address.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    }, (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));

  process.stdout.write(JSON.stringify({ s3rver: s3Address.port, proxy: proxy.address().port }) + '\n');
  // The reader stops after the ports line: anything else goes to stderr.
  process.stdout.write = process.stderr.write.bind(process.stderr);
  const stop = () => process.exit(0);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  process.stderr.write(`launch.js: ${err.stack || err}\n`);
  process.exit(1);
});
