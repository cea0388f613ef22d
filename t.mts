import { checkPlan } from './compiler/compile.js';
import { fsPlanSource } from './compiler/source.js';
import { formatProblem } from './compiler/errors.js';
const c = checkPlan(fsPlanSource(process.argv[2]!));
for (const d of c.diagnostics) console.log(formatProblem(d));
