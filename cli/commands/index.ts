/** Every command of the CLI, in the order `reprise --help` lists them. */
import type { Command } from 'commander';
import { registerDemo } from './demo.js';
import { registerValidate } from './validate.js';
import { registerCompile } from './compile.js';
import { registerDiff } from './diff.js';
import { registerKeygen } from './keygen.js';
import { registerApprove } from './approve.js';
import { registerVerify } from './verify.js';
import { registerDryRun, registerRun } from './run.js';
import { registerControl, registerLedger, registerStatus } from './control.js';
import { registerReverse } from './reverse.js';
import { registerK8s } from './k8s.js';
import { registerCiComment } from './ci-comment.js';
import { registerSchema } from './schema.js';

export const commands: Array<(program: Command) => void> = [registerDemo, registerValidate, registerCompile, registerDiff, registerDryRun, registerCiComment, registerKeygen, registerApprove, registerVerify, registerRun, registerStatus, registerControl, registerLedger, registerReverse, registerK8s, registerSchema];
