/** The README's promises: the test command CI runs, and a plan example that is a valid plan. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPlan } from '../../compiler/compile.js';
import { root, textSource } from './helpers.js';

const readme = readFileSync(join(root, 'README.md'), 'utf8');

describe('README', () => {
  it('gives the test command .ci/run runs, on a line of its own', () => {
    expect(readme.split('\n')).toContain('npm test');
    expect(readFileSync(join(root, '.ci', 'run'), 'utf8')).toMatch(/^npm test$/m);
  });

  it('has the two-command quickstart', () => {
    expect(readme).toContain('npm ci && npx reprise demo');
  });

  it('shows a plan at a glance that validates', () => {
    const m = /```yaml\n(reprise: 1[\s\S]*?)```/.exec(readme);
    expect(m).not.toBeNull();
    const checked = checkPlan(textSource(m![1]!, join(root, 'plans', 'examples'), 'README.md'));
    expect(checked.diagnostics).toEqual([]);
  });

  it('links documents that exist', () => {
    for (const [, target] of readme.matchAll(/\]\(((?:docs|plans)\/[^)#]+)\)/g)) {
      expect(existsSync(join(root, target!)), target).toBe(true);
    }
  });
});
