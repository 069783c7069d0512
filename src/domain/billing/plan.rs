//! Planning a period's charges for one subscription from its change history: a pure
//! function, so the billing run and its preview produce the same lines.
//!
//! Lines follow the vendor's own model (Partner Center's charge types), so a line, once
//! billed, never needs recomputing, only correcting by another line:
//! - a **cycle charge** for each *segment* (a billing cycle — MONTHLY: a calendar month;
//!   ANNUAL: a year of the term; UPFRONT: the whole term — cut at the term boundaries),
//!   billed in advance by the run of the month it starts in, for the seats at its start and
//!   at the prices of its term (each change row records the prices in force after it);
//! - the first segment of the **expected next term** (auto-renew on) in advance at the
//!   current term's prices; the renewal, once on record, re-prices it if its prices differ,
//!   an expiry refunds it;
//! - a **change line** for each purchase, seat increase, seat decrease and cancellation,
//!   prorated by day from the change's date to the end of its segment (negative for the
//!   refunds of decreases and cancellations), and for the next segment too when that was
//!   billed in advance before the change;
//! - the **reversal** of what was billed while a purchase was pending, when the vendor
//!   refuses it, and a purchase line from the day a retry provisioned it;
//! - **usage** in arrears, from usage records not billed yet.
//!
//! A line for time before the period (a change or usage from a period already billed, a
//! cycle a skipped run never billed) lands on the next run as an ADJUSTMENT. Idempotency
//! keys (`cycle:…`, `change:…`, `usage:…`, unique per subscription) make a run repeatable.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use entity::enums::{ChargeKind, SubscriptionChangeKind as K};
use entity::{subscription, subscription_change};
use rust_decimal::Decimal;

use super::corrections::{CancellationLine, correct_expected_term, reverse_refused_purchase};
use super::proration::{ProrationRounding, prorate};
pub use super::terms::{Cycle, Period, cycle_containing, state_before};
use super::terms::{Prices, Segment, Terms, billable, date, midnight};
use crate::domain::error::Result;
use crate::domain::money::Currency;

/// How a cancellation inside the 168 h window is refunded (a distributor's policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CancellationRefund {
    /// The remaining days of the cycle, prorated by day (Microsoft).
    #[default]
    ProrateDaily,
    /// Everything billed for the term's current cycle when cancelled within 24 hours of
    /// purchase or renewal; after that, the remaining hours of the cycle, prorated by hour.
    FullWithin24HoursThenHourly,
}

/// Billing settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct BillingSettings {
    /// Where proration rounds.
    pub rounding: ProrationRounding,
    /// How tax is computed.
    pub tax: super::proration::TaxPolicy,
    /// How cancellations are refunded.
    pub cancellation_refund: CancellationRefund,
}

/// A charge to write: its key, inputs and amounts at the three prices.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedCharge {
    /// RECURRING, PRORATION, REFUND, USAGE or ADJUSTMENT.
    pub kind: ChargeKind,
    /// Unique per subscription and period.
    pub key: String,
    /// For a person.
    pub description: String,
    /// Seats (negative for refunds) or usage units.
    pub quantity: Decimal,
    /// Days billed, for prorated lines.
    pub days_used: Option<u32>,
    /// Days in the cycle, for prorated lines.
    pub days_in_period: Option<u32>,
    /// First day covered.
    pub service_start: DateTime<Utc>,
    /// First day after the service.
    pub service_end: DateTime<Utc>,
    /// Prorated unit prices (cost, wholesale, retail).
    pub unit: (Decimal, Decimal, Decimal),
    /// Line amounts (cost, wholesale, retail), rounded.
    pub amount: (Decimal, Decimal, Decimal),
    /// Undiscounted unit prices for a whole cycle (per unit for usage).
    pub cycle_unit: (Decimal, Decimal, Decimal),
}

/// The charges `period` adds for one subscription. `charged` holds the keys this
/// subscription was already charged under, in any period.
pub fn plan_subscription(
    subscription: &subscription::Model,
    history: &[subscription_change::Model],
    period: Period,
    charged: &HashSet<String>,
    settings: BillingSettings,
) -> Result<Vec<PlannedCharge>> {
    let currency = Currency::parse(&subscription.currency, "currency")?;
    let terms = Terms::new(subscription, history);
    let mut planned = Vec::new();
    // One line: `quantity` from `from` to the end of `segment`, prorated over its cycle.
    let line =
        |kind, key: String, description: String, quantity: i32, from: NaiveDate, segment: Segment, prices: Prices| {
            let days_used = u32::try_from((segment.end - from).num_days().max(0)).unwrap_or(0);
            let q = Decimal::from(quantity);
            let of = segment.cycle.days();
            let p = |unit| prorate(unit, q, days_used, of, currency, settings.rounding);
            let (cost, wholesale, retail) = (p(prices.0), p(prices.1), p(prices.2));
            PlannedCharge {
                kind,
                key,
                description,
                quantity: q,
                days_used: Some(days_used),
                days_in_period: Some(of),
                service_start: midnight(from),
                service_end: midnight(segment.end),
                unit: (cost.unit_price, wholesale.unit_price, retail.unit_price),
                amount: (cost.amount, wholesale.amount, retail.amount),
                cycle_unit: prices,
            }
        };

    // Recurring lines, in advance: every segment after the purchase's that starts before
    // this period ends and was never billed (a run that was skipped is caught up).
    let purchase = history.iter().find(|c| c.kind == K::Purchase);
    // A purchase the vendor refused is in force only from a retry that succeeded: nothing
    // before that day is billed (what was billed while it was pending is reversed below).
    let first_failure = history
        .iter()
        .find(|c| matches!(c.kind, K::ProvisioningFailed | K::Provisioned))
        .filter(|c| c.kind == K::ProvisioningFailed);
    let in_force_from = first_failure.map(|failure| {
        history.iter().find(|c| c.kind == K::Provisioned && c.id > failure.id).map(|c| date(c.occurred_at))
    });
    let mut segment = purchase.map(|p| terms.segment(date(p.occurred_at)));
    while let Some(previous) = segment {
        let current = terms.segment(previous.end);
        if current.start >= period.end() || current.start <= previous.start {
            break;
        }
        segment = Some(current);
        // A term that never began (or is not expected) bills nothing, nor does any after it;
        // an expected term only its first segment, ahead of the renewal.
        let Some(prices) = terms.prices(current.term) else { break };
        let expected = current.term >= terms.on_record();
        if expected && current.start != terms.start(current.term) {
            break;
        }
        if current.charged(charged) || in_force_from.is_some_and(|from| from.is_none_or(|day| current.start < day)) {
            continue;
        }
        let Some((quantity, status)) = state_before(history, current.start) else { continue };
        if !billable(status) || quantity <= 0 {
            continue;
        }
        let kind = if current.start < period.start { ChargeKind::Adjustment } else { ChargeKind::Recurring };
        let renewal = if expected { " (renewal, billed in advance)" } else { "" };
        let description = format!("{quantity} × {} – {}{renewal}", current.start, current.last_day());
        planned.push(line(kind, current.key(expected), description, quantity, current.start, current, prices));
    }

    // Changes up to the end of this period that were never charged.
    // A purchase the vendor refused is not billed: the first failure (before any success)
    // reverses what was billed while it was pending; a retry that succeeds is billed from
    // the day the vendor provisioned it.
    for change in history.iter().filter(|c| date(c.occurred_at) < period.end()) {
        let key = format!("change:{}", change.id);
        if charged.contains(&key) {
            continue;
        }
        let day = date(change.occurred_at);
        let (delta, kind, what) = match change.kind {
            K::Purchase if first_failure.is_some() => continue,
            K::Purchase => (change.quantity_after, ChargeKind::Proration, "purchase"),
            K::Provisioned if first_failure.is_some_and(|f| f.id < change.id) => {
                (change.quantity_after, ChargeKind::Proration, "provisioned after a retry")
            }
            K::QuantityIncrease => {
                (change.quantity_after - change.quantity_before, ChargeKind::Proration, "seats added")
            }
            K::QuantityDecrease => {
                (change.quantity_after - change.quantity_before, ChargeKind::Refund, "seats removed")
            }
            K::Cancel => (-change.quantity_before, ChargeKind::Refund, "cancelled"),
            K::ProvisioningFailed if first_failure.is_some_and(|f| f.id == change.id) => {
                planned.extend(reverse_refused_purchase(&terms, history, change, key, &line, charged));
                continue;
            }
            K::Renew | K::Expire => {
                planned.extend(correct_expected_term(&terms, history, change, key, &line, charged));
                continue;
            }
            _ => continue,
        };
        if delta == 0 {
            continue;
        }
        let segment = terms.segment(day);
        // A change dated in a term not on record (made on a renewal's day before the
        // scheduler renewed) waits for the renewal, and is not billed if the term never began.
        if segment.term >= terms.on_record() {
            continue;
        }
        let Some(prices) = terms.prices(segment.term) else { continue };
        let kind = if day < period.start && kind != ChargeKind::Refund { ChargeKind::Adjustment } else { kind };
        if change.kind == K::Cancel && settings.cancellation_refund == CancellationRefund::FullWithin24HoursThenHourly {
            let refund = CancellationLine { terms: &terms, history, change, key: &key, segment, prices };
            planned.extend(refund.full_or_hourly(subscription, &line, currency, settings));
        } else {
            let description = format!("{what}: {delta:+} × {day} – {}", segment.last_day());
            planned.push(line(kind, key.clone(), description, delta, day, segment, prices));
        }
        // Segments after it may have been billed before this change was known: the next one
        // in advance (an anniversary or a renewal later in a month already run), and every
        // one billed while the vendor had not confirmed the change (billing held it). Each
        // was billed for the seats in force at its start, at the prices it was billed at (an
        // expected term's at the term before's), so the change applies to each.
        // (Not to a provisioning after a retry: what was billed before it was reversed.)
        for next in terms.billed_after(segment, charged) {
            if change.kind == K::Provisioned {
                break;
            }
            let billed_at = if next.charged_as_expected(charged) && next.term > 0 {
                terms.prices(next.term - 1)
            } else {
                terms.prices(next.term)
            };
            let description = format!("{what}: {delta:+} × {} – {} (billed in advance)", next.start, next.last_day());
            planned.push(line(
                kind,
                format!("{key}:cycle:{}", next.start),
                description,
                delta,
                next.start,
                next,
                billed_at.unwrap_or(prices),
            ));
        }
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use chrono::{Months, TimeZone};
    use entity::DbDecimal;
    use entity::enums::{BillingFrequency, Role, SubscriptionStatus as S, Term};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 10, 0, 0).single().unwrap_or_default()
    }

    fn subscription(unit: Decimal, frequency: BillingFrequency, start: DateTime<Utc>) -> subscription::Model {
        subscription::Model {
            id: 1,
            customer_id: 1,
            reseller_id: 1,
            vendor_id: 1,
            offer_id: 1,
            order_id: None,
            quantity: 1,
            status: S::Active,
            term: Term::P1y,
            billing_frequency: frequency,
            term_start: Some(start),
            term_end: start.checked_add_months(Months::new(12)),
            auto_renew: true,
            vendor_reference: None,
            update_count: 0,
            currency: "USD".into(),
            unit_cost: DbDecimal(unit),
            unit_wholesale: DbDecimal(unit),
            unit_retail: DbDecimal(unit),
            prices_locked_at: start,
            version: 1,
            created_at: start,
            updated_at: start,
            billing_settled: false,
            sync_issue: None,
        }
    }

    fn change(id: i64, kind: K, before: i32, after: i32, when: DateTime<Utc>) -> subscription_change::Model {
        subscription_change::Model {
            id,
            subscription_id: 1,
            kind,
            actor_user_id: None,
            actor_role: Role::Reseller,
            quantity_before: before,
            quantity_after: after,
            status_before: S::Active,
            status_after: S::Active,
            idempotency_key: None,
            occurred_at: when,
            unit_cost: None,
            unit_wholesale: None,
            unit_retail: None,
            job_id: None,
            vendor_outcome: None,
            seats_taken: None,
        }
    }

    fn november() -> Period {
        Period::parse("2026-11").unwrap_or_else(|_| unreachable!())
    }

    /// Random seat histories within November: a purchase, then increases and decreases.
    fn histories() -> impl Strategy<Value = (i64, Vec<(u32, i32)>)> {
        (1_i64..50_000, proptest::collection::vec((1_u32..=30, 1_i32..200), 1..8)).prop_map(|(cents, mut steps)| {
            steps.sort_by_key(|(day, _)| *day);
            (cents, steps)
        })
    }

    fn build(cents: i64, steps: &[(u32, i32)]) -> (subscription::Model, Vec<subscription_change::Model>) {
        let start = at(steps[0].0);
        let sub = subscription(Decimal::new(cents, 2), BillingFrequency::Monthly, start);
        let mut history = vec![change(1, K::Purchase, 0, steps[0].1, start)];
        let mut quantity = steps[0].1;
        for (index, (day, q)) in steps.iter().enumerate().skip(1) {
            let kind = if *q >= quantity { K::QuantityIncrease } else { K::QuantityDecrease };
            history.push(change(index as i64 + 1, kind, quantity, *q, at(*day)));
            quantity = *q;
        }
        (sub, history)
    }

    /// The exact amount: every segment's seats × unit price × its days / 30, unrounded.
    fn direct(cents: i64, steps: &[(u32, i32)]) -> Decimal {
        let unit = Decimal::new(cents, 2);
        let mut total = Decimal::ZERO;
        for (index, (day, q)) in steps.iter().enumerate() {
            let until = steps.get(index + 1).map_or(31, |(next, _)| *next);
            total += unit * Decimal::from(*q) * Decimal::from(until - day) / Decimal::from(30);
        }
        total
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Per-line rounding: the planned lines add up to the exact amount within half a
        /// cent per line, and planning again with those lines billed adds nothing.
        #[test]
        fn planned_charges_match_the_direct_computation((cents, steps) in histories()) {
            let (sub, history) = build(cents, &steps);
            let settings = BillingSettings { rounding: ProrationRounding::RoundPerLine, ..BillingSettings::default() };
            let lines = plan_subscription(&sub, &history, november(), &HashSet::new(), settings).unwrap_or_default();
            let sum: Decimal = lines.iter().map(|l| l.amount.2).sum();
            let tolerance = dec!(0.005) * Decimal::from(lines.len() as u64);
            prop_assert!((sum - direct(cents, &steps)).abs() <= tolerance, "{sum} vs {}", direct(cents, &steps));
            let charged: HashSet<String> = lines.iter().map(|l| l.key.clone()).collect();
            let again = plan_subscription(&sub, &history, november(), &charged, settings).unwrap_or_default();
            prop_assert!(again.is_empty(), "billing twice adds {again:?}");
        }

        /// Per-unit rounding (the default) errs by at most half a cent per seat changed.
        #[test]
        fn per_unit_rounding_is_bounded_by_the_seats_changed((cents, steps) in histories()) {
            let (sub, history) = build(cents, &steps);
            let lines = plan_subscription(&sub, &history, november(), &HashSet::new(), BillingSettings::default()).unwrap_or_default();
            let sum: Decimal = lines.iter().map(|l| l.amount.2).sum();
            let seats_changed: Decimal = lines.iter().map(|l| l.quantity.abs()).sum();
            prop_assert!((sum - direct(cents, &steps)).abs() <= dec!(0.005) * seats_changed);
        }
    }

    #[test]
    fn the_partner_center_vector_through_a_plan() {
        // $4/month bought on 2 November (29 of 30 days): 1 seat 3.87, 2 seats 7.74.
        let sub = subscription(dec!(4), BillingFrequency::Monthly, at(2));
        for (seats, amount) in [(1, dec!(3.87)), (2, dec!(7.74))] {
            let history = [change(1, K::Purchase, 0, seats, at(2))];
            let lines = plan_subscription(&sub, &history, november(), &HashSet::new(), BillingSettings::default())
                .unwrap_or_default();
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0].amount.2, amount);
            assert_eq!((lines[0].days_used, lines[0].days_in_period), (Some(29), Some(30)));
        }
    }

    fn cancelled_after(hours: i64, policy: CancellationRefund) -> Vec<PlannedCharge> {
        let bought = at(2);
        let sub = subscription(dec!(30), BillingFrequency::Monthly, bought);
        let mut cancel = change(2, K::Cancel, 3, 3, bought + chrono::Duration::hours(hours));
        cancel.status_after = S::Cancelled;
        let history = [change(1, K::Purchase, 0, 3, bought), cancel];
        let settings = BillingSettings { cancellation_refund: policy, ..BillingSettings::default() };
        plan_subscription(&sub, &history, november(), &HashSet::new(), settings).unwrap_or_default()
    }

    #[test]
    fn cancellation_refunds_follow_the_policy() {
        // $30/month, 3 seats bought 2 November 10:00 (29 days: 3 × 29.00 = 87.00).
        let daily = cancelled_after(72, CancellationRefund::ProrateDaily);
        assert_eq!(daily[0].amount.2, dec!(87.00));
        assert_eq!(daily[1].amount.2, dec!(-78.00), "26 days of 30 refunded: 3 × 26.00");
        let full = cancelled_after(10, CancellationRefund::FullWithin24HoursThenHourly);
        assert_eq!(full[1].amount.2, dec!(-87.00), "within 24 h: everything billed");
        let hourly = cancelled_after(72, CancellationRefund::FullWithin24HoursThenHourly);
        // Cancelled 5 November 10:00: 614 of 720 hours left, round(30 × 614 / 720) = 25.58 × 3.
        assert_eq!((hourly[1].days_used, hourly[1].days_in_period), (Some(614), Some(720)));
        assert_eq!(hourly[1].amount.2, dec!(-76.74));
        // The 10 hours from midnight to the purchase were billed and never used: 3 × round(30 × 10 / 720).
        assert_eq!((hourly[2].days_used, hourly[2].amount.2), (Some(10), dec!(-1.26)));
    }

    #[test]
    fn bought_on_the_31st() {
        let bought = Utc.with_ymd_and_hms(2027, 1, 31, 12, 0, 0).single().unwrap_or_default();
        // Monthly: one day of January's 31.
        let monthly = subscription(dec!(31), BillingFrequency::Monthly, bought);
        let history = [change(1, K::Purchase, 0, 1, bought)];
        let january = Period::parse("2027-01").unwrap_or_else(|_| unreachable!());
        let lines = plan_subscription(&monthly, &history, january, &HashSet::new(), BillingSettings::default())
            .unwrap_or_default();
        assert_eq!((lines[0].days_used, lines[0].days_in_period, lines[0].amount.2), (Some(1), Some(31), dec!(1.00)));
        let february = Period::parse("2027-02").unwrap_or_else(|_| unreachable!());
        let charged: HashSet<String> = lines.iter().map(|l| l.key.clone()).collect();
        let next =
            plan_subscription(&monthly, &history, february, &charged, BillingSettings::default()).unwrap_or_default();
        assert_eq!((next[0].days_used, next[0].days_in_period), (Some(28), Some(28)));
        // Annual: the year runs to the 31st of January next (365 days), then the next cycle.
        let annual = subscription(dec!(365), BillingFrequency::Annual, bought);
        let cycle = cycle_containing(&annual, bought.date_naive());
        assert_eq!(
            (cycle.start.to_string(), cycle.end.to_string(), cycle.days()),
            ("2027-01-31".into(), "2028-01-31".into(), 365)
        );
        let next = cycle_containing(&annual, cycle.end);
        assert_eq!((next.end.to_string(), next.days()), ("2029-01-31".into(), 366));
    }

    #[test]
    fn an_annual_term_that_ended_without_renewal_bills_no_further_year() {
        // P1Y, billed annually, bought 15 January 2026 with auto-renew off: its term ends
        // 15 January 2027, so January 2027 starts no new yearly cycle.
        let bought = Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).single().unwrap_or_default();
        let mut annual = subscription(dec!(120), BillingFrequency::Annual, bought);
        annual.auto_renew = false;
        let history = [change(1, K::Purchase, 0, 2, bought)];
        let charged: HashSet<String> = ["change:1".to_owned()].into();
        let january = Period::parse("2027-01").unwrap_or_else(|_| unreachable!());
        let lines = plan_subscription(&annual, &history, january, &charged, BillingSettings::default());
        assert_eq!(lines.map(|l| l.len()).unwrap_or(usize::MAX), 0);
        // With auto-renew on, the next year is billed in advance.
        annual.auto_renew = true;
        let lines =
            plan_subscription(&annual, &history, january, &charged, BillingSettings::default()).unwrap_or_default();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].amount.2, dec!(240.00));
    }

    #[test]
    fn periods_parse_and_step() {
        let period = Period::parse("2026-11").unwrap_or_else(|_| unreachable!());
        assert_eq!(period.label(), "2026-11");
        assert_eq!(period.end(), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default());
        assert_eq!(period.next().label(), "2026-12");
        assert!(Period::parse("2026-13").is_err());
        assert!(Period::parse("26-11").is_err());
        assert!(Period::parse("2026-1").is_err());
        let feb = Period::parse("2028-02").unwrap_or_else(|_| unreachable!());
        assert_eq!((feb.end() - feb.start).num_days(), 29);
    }
}
