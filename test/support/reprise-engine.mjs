#!/usr/bin/env node
/**
 * The reprise CLI for tests of the run engine (crash, workers, monitoring…): bin/reprise.js with
 * the approval preflight switched off, as a library caller of runStage runs it. Those tests are
 * about processing, not sign-off, and start `--stage full` on fresh runs. The approval and
 * go/no-go tests (test/approvals/) run the real bin/reprise.js.
 */
import { runCommandSettings } from '../../dist/cli/commands/run.js';
import { main } from '../../dist/cli/main.js';

runCommandSettings.approvals = false;
process.exitCode = await main(process.argv);
