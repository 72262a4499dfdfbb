// The Node peer of shipshape's load report (bench/cmd/benchreport starts it):
// the stack a Node service puts in front of its routes, express with
// morgan ("combined", to a file), express-slow-down and express-rate-limit,
// with limits so large that no request of a run is delayed or refused, as
// in the Go configurations. It answers GET /hello and GET /json exactly as
// the Go servers do (same bodies, same Content-Type).
//
//	node server.js --port 8080 [--logdir DIR] [--cluster [--workers N]]
//
// --port is required (the Go side picks a free one, so that the workers of
// cluster mode can share it); --cluster runs node:cluster with N workers,
// os.availableParallelism() by default. Once every process listens, it
// prints "listening 127.0.0.1:PORT" on stdout. SIGTERM or SIGINT stops it
// (in cluster mode the primary stops the workers, then exits).
'use strict';

const cluster = require('node:cluster');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values: args } = parseArgs({
	options: {
		port: { type: 'string' },
		logdir: { type: 'string', default: os.tmpdir() },
		cluster: { type: 'boolean', default: false },
		workers: { type: 'string' },
	},
});

const host = '127.0.0.1';
const port = Number(args.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
	console.error('server.js: --port must be a port number, not %j', args.port);
	process.exit(2);
}
const workers = args.workers === undefined ? os.availableParallelism() : Number(args.workers);
if (!Number.isInteger(workers) || workers < 1) {
	console.error('server.js: --workers must be ≥ 1, not %j', args.workers);
	process.exit(2);
}

// As hugeLimit and limitWindow in bench/cmd/benchreport/servers.go.
const hugeLimit = 2 ** 30;
const limitWindowMs = 60_000;

const helloBody = 'hello, world\n';

// The /json work, as jsonHandler in servers.go: the same catalogue, lookup,
// score and document, so that the body is the same to the byte.
const catalogueSize = 1000;
const jsonSKU = 'sku-0042';
const jsonRelated = 8;
const jsonRounds = 300;

const skuOf = (id) => 'sku-' + String(id).padStart(4, '0');

const catalogue = new Map();
for (let id = 0; id < catalogueSize; id++) {
	catalogue.set(skuOf(id), {
		id,
		sku: skuOf(id),
		name: 'Product ' + id,
		price: ((id * 37) % 10000) / 100,
		tags: ['t' + (id % 7), 't' + (id % 11)],
	});
}

// jsonScore is jsonScore of servers.go in 32-bit integer arithmetic: >>>
// for the unsigned shifts, Math.imul for the wrapping product.
function jsonScore(seed, rounds) {
	let x = (seed | 1) >>> 0;
	let acc = 0;
	for (let r = 0; r < rounds; r++) {
		for (let i = 0; i < 64; i++) {
			x ^= x << 13;
			x ^= x >>> 17;
			x ^= x << 5;
			x >>>= 0;
			acc = (Math.imul(acc, 31) + x) >>> 0;
		}
	}
	return acc;
}

function buildDoc() {
	const product = catalogue.get(jsonSKU);
	const related = [];
	for (let i = 1; i <= jsonRelated; i++) {
		related.push(catalogue.get(skuOf(product.id + i)));
	}
	return { product, related, score: jsonScore(product.id, jsonRounds) };
}

function serve() {
	const express = require('express');
	const morgan = require('morgan');
	const { rateLimit } = require('express-rate-limit');
	const { slowDown } = require('express-slow-down');

	const log = fs.createWriteStream(path.join(args.logdir, 'node-access.log'), { flags: 'a' });
	const app = express();
	app.use(morgan('combined', { stream: log }));
	app.use(
		slowDown({
			windowMs: limitWindowMs,
			delayAfter: hugeLimit - 1,
			delayMs: (used, req) => (used - req.slowDown.limit) * 100,
		}),
	);
	app.use(
		rateLimit({
			windowMs: limitWindowMs,
			limit: hugeLimit,
			standardHeaders: 'draft-7',
			legacyHeaders: false,
		}),
	);
	app.get('/hello', (req, res) => {
		res.set('Content-Type', 'text/plain; charset=utf-8').send(helloBody);
	});
	app.get('/json', (req, res) => {
		res.json(buildDoc());
	});

	const server = app.listen(port, host, (err) => {
		if (err) {
			console.error('server.js: listen %s:%d: %s', host, port, err.message);
			process.exit(1);
		}
		if (!cluster.isWorker) {
			console.log('listening %s:%d', host, port);
		}
	});
	const stop = () => {
		server.close(() => log.end(() => process.exit(0)));
		server.closeAllConnections();
	};
	process.once('SIGTERM', stop);
	process.once('SIGINT', stop);
}

function primary() {
	let listening = 0;
	let stopping = false;
	cluster.on('listening', () => {
		if (++listening === workers) {
			console.log('listening %s:%d', host, port);
		}
	});
	cluster.on('exit', (worker, code, signal) => {
		if (!stopping) {
			console.error('server.js: worker %d exited (%s): stopping', worker.process.pid, signal || code);
			stopAll(1);
		} else if (Object.keys(cluster.workers).length === 0) {
			process.exit();
		}
	});
	const stopAll = (code) => {
		if (stopping) return;
		stopping = true;
		process.exitCode = code;
		for (const w of Object.values(cluster.workers)) {
			w.process.kill('SIGTERM');
		}
	};
	process.once('SIGTERM', () => stopAll(0));
	process.once('SIGINT', () => stopAll(0));
	for (let i = 0; i < workers; i++) {
		cluster.fork();
	}
}

if (args.cluster && cluster.isPrimary) {
	primary();
} else {
	serve();
}
