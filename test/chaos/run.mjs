#!/usr/bin/env node
/**
 * `npm run chaos -- --trials N --seed S [--items MIN-MAX] [--seconds MIN-MAX] [--faults K,K] [--only I,J] [--keep-failed] [--no-build] [--verbose]`
 * The harness is TypeScript (test/chaos/cli.ts); tsx loads it here, as it loads handlers.
 */
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
