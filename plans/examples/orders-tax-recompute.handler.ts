/**
 * Recomputes one order's invoice with the corrected tax rounding.
 *
 * The bug rounded tax per line item (toward zero) instead of once per invoice, half to even.
 * This handler recomputes from the order's subtotal, writes the invoice (an upsert: safe to
 * replay), asks for the customer email (suppressed by the plan: customers already received
 * one), and publishes a correction event for the general ledger when the total changed (deduped
 * with the live invoicer on `invoice-corrected:{order_id}`).
 */
import { defineHandler } from 'reprise';

interface OrderRow {
  id: string | number;
  customer_id: string | number;
  subtotal_cents: string | number;
  region: string;
  /** The total the buggy invoicer wrote. */
  invoiced_total_cents: string | number;
}

/** Tax rates in basis points, per billing region. */
const TAX_BPS: Record<string, number> = {
  'eu-de': 1900,
  'eu-fr': 2000,
  'eu-nl': 2100,
  'us-ca': 725,
  'us-ny': 400,
  'us-tx': 625,
};

/** Rounds a rational amount of cents half to even (banker's rounding), as finance requires. */
export function roundHalfEven(numerator: bigint, denominator: bigint): bigint {
  const q = numerator / denominator;
  const r = numerator % denominator;
  const twice = 2n * r;
  if (twice < denominator) return q;
  if (twice > denominator) return q + 1n;
  return q % 2n === 0n ? q : q + 1n;
}

export function taxCents(subtotalCents: bigint, region: string): bigint {
  const bps = TAX_BPS[region];
  if (bps === undefined) throw new Error(`no tax rate for region ${region}`);
  return roundHalfEven(subtotalCents * BigInt(bps), 10_000n);
}

type Effects = 'write_invoice' | 'email_customer' | 'publish_invoice_corrected';

export default defineHandler<OrderRow, Effects>(async (order, ctx) => {
  const subtotal = BigInt(order.subtotal_cents);
  const tax = taxCents(subtotal, order.region);
  const total = subtotal + tax;

  const write = await ctx.effects.write_invoice({
    order_id: String(order.id),
    total_cents: total.toString(),
    tax_cents: tax.toString(),
  });
  ctx.log.info('invoice recomputed', { order: order.id, total: total.toString(), status: write.status });

  // The live path emails the customer after every invoice write; the plan suppresses it here.
  await ctx.effects.email_customer({
    customer_id: String(order.customer_id),
    order_id: String(order.id),
    template: 'invoice-updated',
  });

  const before = BigInt(order.invoiced_total_cents);
  if (before !== total) {
    await ctx.effects.publish_invoice_corrected({
      order_id: String(order.id),
      old_total_cents: before.toString(),
      new_total_cents: total.toString(),
    });
  }
});
