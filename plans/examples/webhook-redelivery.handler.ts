/**
 * Redelivers one dead-lettered webhook.
 *
 * The gate sends `deliver_webhook` at most once per `webhook:{subscription_id}:{event_id}`,
 * shared with the live dispatcher, and puts that key in the request's Idempotency-Key header.
 * The dead letter is then marked resolved: `redelivered` when this run sent it, or
 * `delivered-by-live` when the dispatcher's own retry got there first.
 */
import { defineHandler } from 'reprise';

interface DeadLetter {
  event_id: string;
  occurred_at: string;
  subscription_id: string;
  partner: string;
  event_type: string;
  attempts: number;
  last_error: string;
  data: Record<string, unknown>;
}

type Effects = 'deliver_webhook' | 'resolve_dead_letter';

export default defineHandler<DeadLetter, Effects>(async (letter, ctx) => {
  const delivery = await ctx.effects.deliver_webhook({
    event_id: letter.event_id,
    subscription_id: letter.subscription_id,
    event_type: letter.event_type,
    occurred_at: letter.occurred_at,
    data: letter.data,
  });

  const resolution = delivery.status === 'skipped-dup' ? 'delivered-by-live' : 'redelivered';
  if (delivery.status === 'skipped-dup') {
    ctx.log.info('already delivered by the live dispatcher', { event: letter.event_id, partner: letter.partner });
  }
  await ctx.effects.resolve_dead_letter({
    event_id: letter.event_id,
    subscription_id: letter.subscription_id,
    resolution,
    run_id: ctx.runId,
  });
});
