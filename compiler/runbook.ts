/** Renders the runbook a reviewer reads before approving (placeholder until the renderer lands). */
import type { Compiled } from './compile.js';

export function renderRunbook(c: Compiled): string {
  return `# Runbook: ${c.plan.name} r${c.plan.revision}\n\nManifest: \`${c.hash}\`\n`;
}
