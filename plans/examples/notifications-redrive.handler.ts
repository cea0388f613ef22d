/**
 * Re-drives one notification left unsent by the push sender outage.
 *
 * Inside the gap (the sender was down) nothing reached the provider: send it, at most once per
 * notification (`push:{notification_id}`, at-most-once delivery). Around the gap the sender was
 * crash-looping or restarting and may have sent it without recording `sent_at`; the provider
 * cannot deduplicate, so hold it: `send_push_unconfirmed` is suppressed by the plan and only
 * recorded in the ledger, for a manual check against the provider's delivery log.
 */
import { defineHandler } from 'reprise';

interface NotificationRow {
  id: string | number;
  user_id: string | number;
  category: string;
  title: string;
  body: string;
  created_at: Date | string;
}

/** The outage: the push sender was down from GAP_START (inclusive) to GAP_END (exclusive). */
export const GAP_START = Date.parse('2026-11-03T09:12:00Z');
export const GAP_END = Date.parse('2026-11-03T17:40:00Z');

export function inGap(createdAt: Date | string): boolean {
  const t = createdAt instanceof Date ? createdAt.getTime() : Date.parse(createdAt);
  if (Number.isNaN(t)) throw new Error(`unreadable created_at: ${String(createdAt)}`);
  return t >= GAP_START && t < GAP_END;
}

type Effects = 'send_push' | 'send_push_unconfirmed' | 'mark_redriven';

export default defineHandler<NotificationRow, Effects>(async (n, ctx) => {
  const push = {
    notification_id: String(n.id),
    user_id: String(n.user_id),
    category: n.category,
    title: n.title,
    body: n.body,
  };
  let outcome: string;
  if (inGap(n.created_at)) {
    const sent = await ctx.effects.send_push(push);
    outcome = sent.status === 'skipped-dup' || sent.status === 'claimed' ? 'already-claimed' : 'resent';
  } else {
    await ctx.effects.send_push_unconfirmed(push);
    outcome = 'held-for-review';
  }
  await ctx.effects.mark_redriven({ notification_id: String(n.id), outcome, run_id: ctx.runId });
});
