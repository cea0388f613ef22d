#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// A reader that goes away (`reprise … --json | head`) is not a failure of the command: its
// output is dropped from then on and the command finishes (a run keeps its state consistent).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}

process.exitCode = await main(process.argv);
