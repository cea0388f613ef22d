#!/usr/bin/env node
/**
 * The reprise CLI as the chaos harness runs it: bin/reprise.js from dist/, with the approval
 * preflight switched off where the build has one (as test/support/reprise-engine.mjs does for
 * the run-engine tests): the harness is about processing under faults, not sign-off, and starts
 * `--stage full` on fresh runs.
 */
import * as runCommand from '../../dist/cli/commands/run.js';
import { main } from '../../dist/cli/main.js';

if (runCommand.runCommandSettings) runCommand.runCommandSettings.approvals = false;
process.exitCode = await main(process.argv);
