//! Lines that correct what was billed in advance once the history says more: the reversal
//! of a purchase the vendor refused, the re-pricing (or refund) of an expected term once its
//! renewal (or expiry) is on record, and cancellations under the distributor's
//! full-within-24-hours-then-hourly refund policy.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use entity::enums::{ChargeKind, SubscriptionChangeKind as K};
use entity::{subscription, subscription_change};
use rust_decimal::Decimal;

use super::plan::{BillingSettings, PlannedCharge};
use super::proration::prorate;
use super::terms::{Prices, Segment, Terms, date, midnight, state_before};
use crate::domain::money::Currency;

/// The first provisioning failure reverses what was billed while the purchase was pending:
/// the purchase's line and every segment billed in advance before the vendor provisioned it
/// on a retry (if it ever did), each at the seats and prices it was billed at.
pub(super) fn reverse_refused_purchase(
    terms: &Terms<'_>,
    history: &[subscription_change::Model],
    failure: &subscription_change::Model,
    key: String,
    line: &impl Fn(ChargeKind, String, String, i32, NaiveDate, Segment, Prices) -> PlannedCharge,
    charged: &HashSet<String>,
) -> Vec<PlannedCharge> {
    let mut reversed = Vec::new();
    let Some(purchase) = history.iter().find(|c| c.kind == K::Purchase) else { return reversed };
    let purchase_day = date(purchase.occurred_at);
    let first_prices = terms.prices.first().copied().unwrap_or_default();
    let mut segment = terms.segment(purchase_day);
    if charged.contains(&format!("change:{}", purchase.id)) {
        let quantity = purchase.quantity_after;
        let description = format!("provisioning failed: reverse {quantity} × {purchase_day} – {}", segment.last_day());
        reversed.push(line(
            ChargeKind::Refund,
            key.clone(),
            description,
            -quantity,
            purchase_day,
            segment,
            first_prices,
        ));
    }
    let provisioned =
        history.iter().find(|c| c.kind == K::Provisioned && c.id > failure.id).map(|c| date(c.occurred_at));
    for _ in 0..10_000 {
        let next = terms.segment(segment.end);
        if next.start <= segment.start || !next.charged(charged) || provisioned.is_some_and(|day| next.start >= day) {
            break;
        }
        segment = next;
        let reversal = format!("{key}:cycle:{}", segment.start);
        if charged.contains(&reversal) {
            continue;
        }
        let Some((quantity, _)) = state_before(history, segment.start) else { continue };
        let prices = terms.prices(segment.term).unwrap_or(first_prices);
        let description =
            format!("provisioning failed: reverse {quantity} × {} – {}", segment.start, segment.last_day());
        reversed.push(line(ChargeKind::Refund, reversal, description, -quantity, segment.start, segment, prices));
    }
    reversed
}

/// A renewal or an expiry on record corrects the first segment of the term it opened (or
/// did not), if that segment was billed in advance at the previous term's prices: an
/// expiry refunds it; a renewal at new prices refunds it and charges it again at the new
/// ones. The seats billed in advance for it are the seats at its start (the segment's own
/// line plus the changes applied to it).
pub(super) fn correct_expected_term(
    terms: &Terms<'_>,
    history: &[subscription_change::Model],
    change: &subscription_change::Model,
    key: String,
    line: &impl Fn(ChargeKind, String, String, i32, NaiveDate, Segment, Prices) -> PlannedCharge,
    charged: &HashSet<String>,
) -> Vec<PlannedCharge> {
    // The term this change opened (a renewal) or would have opened (an expiry).
    let term = match terms.renewals.iter().position(|id| *id == change.id) {
        Some(index) => u32::try_from(index + 1).unwrap_or(u32::MAX),
        None => terms.on_record(),
    };
    let segment = terms.segment(terms.start(term));
    if !segment.charged_as_expected(charged) {
        return Vec::new();
    }
    let Some((quantity, _)) = state_before(history, segment.start) else { return Vec::new() };
    let index = |k: u32| usize::try_from(k).ok().and_then(|k| terms.prices.get(k).copied());
    let (Some(previous), renewed) = (term.checked_sub(1).and_then(index), index(term)) else { return Vec::new() };
    if renewed == Some(previous) {
        return Vec::new();
    }
    // What was billed at the previous term's prices, line by line as it was billed (so a
    // line rounded on its own is reversed exactly): the segment's own line, for the seats
    // at that time, and one line per seat change applied to it since.
    // A seat change applied to it is a line of its own: billed by an earlier run, or by
    // this one (a change before the segment, not charged yet, from whose segment on every
    // one up to this was billed: the plan applies it to each of them in the same run).
    let corrections: Vec<(i64, i32)> = history
        .iter()
        .filter(|c| matches!(c.kind, K::QuantityIncrease | K::QuantityDecrease) && c.id < change.id)
        .filter(|c| {
            charged.contains(&format!("change:{}:cycle:{}", c.id, segment.start))
                || (!charged.contains(&format!("change:{}", c.id))
                    && date(c.occurred_at) < segment.start
                    && terms
                        .billed_after(terms.segment(date(c.occurred_at)), charged)
                        .iter()
                        .any(|billed| billed.start == segment.start))
        })
        .map(|c| (c.id, c.quantity_after - c.quantity_before))
        .collect();
    let own = quantity - corrections.iter().map(|(_, delta)| delta).sum::<i32>();
    let span = format!("{} – {}", segment.start, segment.last_day());
    let why = if renewed.is_some() { "renewed at new prices" } else { "term ended without renewal" };
    let mut lines = vec![line(
        ChargeKind::Refund,
        key.clone(),
        format!("{why}: {:+} × {span} at the previous term's prices", -own),
        -own,
        segment.start,
        segment,
        previous,
    )];
    for (id, delta) in corrections {
        lines.push(line(
            ChargeKind::Refund,
            format!("{key}:undo:{id}"),
            format!("{why}: {:+} × {span} at the previous term's prices (seat change)", -delta),
            -delta,
            segment.start,
            segment,
            previous,
        ));
    }
    if let Some(renewed) = renewed {
        lines.push(line(
            ChargeKind::Adjustment,
            format!("{key}:renewed"),
            format!("renewed at new prices: {quantity:+} × {span} at the renewed term's"),
            quantity,
            segment.start,
            segment,
            renewed,
        ));
    }
    lines
}

/// A cancellation under `FullWithin24HoursThenHourly`.
pub(super) struct CancellationLine<'a> {
    pub(super) terms: &'a Terms<'a>,
    pub(super) history: &'a [subscription_change::Model],
    pub(super) change: &'a subscription_change::Model,
    pub(super) key: &'a str,
    pub(super) segment: Segment,
    pub(super) prices: Prices,
}

impl CancellationLine<'_> {
    /// Within 24 hours of the term's start, everything billed for the term is refunded,
    /// line by line as it was billed (the term's first days, each later segment up to the
    /// cancellation's, each seat change); after that, the hours not used, prorated by hour:
    /// from the cancellation to the end of its segment, and — when the term began in this
    /// segment — the hours between the midnight its first day was billed from and its start.
    pub(super) fn full_or_hourly(
        &self,
        subscription: &subscription::Model,
        line: &impl Fn(ChargeKind, String, String, i32, NaiveDate, Segment, Prices) -> PlannedCharge,
        currency: Currency,
        settings: BillingSettings,
    ) -> Vec<PlannedCharge> {
        let (terms, history, change, key) = (self.terms, self.history, self.change, self.key);
        let at = change.occurred_at;
        // A cancelled subscription renews no more: the row's term is the one cancelled.
        let term_start = subscription.term_start.unwrap_or(at);
        let first = terms.segment(date(term_start));
        if at - term_start <= chrono::Duration::hours(24) {
            let mut refunds = Vec::new();
            let opened = history
                .iter()
                .rfind(|c| matches!(c.kind, K::Purchase | K::Renew) && c.occurred_at <= at)
                .map_or(change.quantity_before, |c| c.quantity_after);
            let description =
                format!("cancelled within 24 hours: {} × {} – {}", -opened, first.start, first.last_day());
            let from = date(term_start).max(first.start);
            refunds.push(line(ChargeKind::Refund, key.to_owned(), description, -opened, from, first, self.prices));
            let mut segment = first;
            while segment.end <= self.segment.start && segment.end > segment.start {
                segment = terms.segment(segment.end);
                let Some((quantity, _)) = state_before(history, segment.start) else { break };
                let description =
                    format!("cancelled within 24 hours: {} × {} – {}", -quantity, segment.start, segment.last_day());
                let key = format!("{key}:cycle:{}", segment.start);
                refunds.push(line(
                    ChargeKind::Refund,
                    key,
                    description,
                    -quantity,
                    segment.start,
                    segment,
                    self.prices,
                ));
            }
            for added in history.iter().filter(|c| {
                matches!(c.kind, K::QuantityIncrease | K::QuantityDecrease)
                    && c.occurred_at >= term_start
                    && c.occurred_at < at
            }) {
                let delta = added.quantity_before - added.quantity_after;
                let day = date(added.occurred_at);
                let segment = terms.segment(day);
                let description = format!("cancelled within 24 hours: {delta:+} × {day} – {}", segment.last_day());
                let key = format!("{key}:change:{}", added.id);
                refunds.push(line(ChargeKind::Refund, key, description, delta, day, segment, self.prices));
            }
            return refunds;
        }
        let hours = |from: DateTime<Utc>, to: DateTime<Utc>| u32::try_from((to - from).num_hours().max(0)).unwrap_or(0);
        let cycle_hours = |segment: Segment| hours(midnight(segment.cycle.start), midnight(segment.cycle.end));
        let hourly = |quantity: i32, from: DateTime<Utc>, to: DateTime<Utc>, of: u32, key: String, what: &str| {
            let q = Decimal::from(quantity);
            let used = hours(from, to);
            let p = |unit| prorate(unit, q, used, of, currency, settings.rounding);
            let (cost, wholesale, retail) = (p(self.prices.0), p(self.prices.1), p(self.prices.2));
            PlannedCharge {
                kind: ChargeKind::Refund,
                key,
                description: format!("{what}: {q} × {used}/{of} hours"),
                quantity: q,
                days_used: Some(used),
                days_in_period: Some(of),
                service_start: from,
                service_end: to,
                unit: (cost.unit_price, wholesale.unit_price, retail.unit_price),
                amount: (cost.amount, wholesale.amount, retail.amount),
                cycle_unit: self.prices,
            }
        };
        let until = midnight(self.segment.end);
        let mut refunds =
            vec![hourly(-change.quantity_before, at, until, cycle_hours(self.segment), key.to_owned(), "cancelled")];
        // The purchase's first day was billed from midnight: the hours before the purchase
        // were never used. (A renewal's first day before the renewal belonged to the term
        // before, which was billed up to that day.)
        let billed_from = midnight(date(term_start));
        if first.term == 0 && term_start > billed_from {
            let opened = history
                .iter()
                .rfind(|c| matches!(c.kind, K::Purchase | K::Renew) && c.occurred_at <= at)
                .map_or(change.quantity_before, |c| c.quantity_after);
            let what = "cancelled: the hours before the term began";
            refunds.push(hourly(
                -opened,
                billed_from,
                term_start,
                cycle_hours(first),
                format!("{key}:before-start"),
                what,
            ));
        }
        refunds
    }
}
