//! Planning a period's charges for one subscription from its change history: a pure
//! function, so the billing run and its preview produce the same lines.
//!
//! Lines follow the vendor's own model (Partner Center's charge types), so a line, once
//! billed, never needs recomputing:
//! - a **cycle charge** at the start of each billing cycle (MONTHLY: each calendar month;
//!   ANNUAL: each year of the term from its start; UPFRONT: the whole term), billed in
//!   advance in the month the cycle starts, for the quantity at that moment;
//! - a **change line** for each purchase, seat increase, seat decrease and cancellation,
//!   prorated by day from the change's date to the end of its cycle (negative for the
//!   refunds of decreases and cancellations, and to reverse a purchase that failed);
//! - **usage** in arrears, from usage records not billed yet.
//!
//! A change or usage from a period already billed lands on the next run as an ADJUSTMENT
//! line. Idempotency keys (`cycle:…`, `change:…`, `usage:…`) make a run repeatable.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use entity::enums::{BillingFrequency, ChargeKind, SubscriptionChangeKind as K, SubscriptionStatus as S, Term};
use entity::{subscription, subscription_change};
use rust_decimal::Decimal;

use super::proration::{ProrationRounding, prorate};
use crate::domain::error::{Error, Result};
use crate::domain::money::Currency;

/// A calendar month in UTC: the billing period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// The first day.
    pub start: NaiveDate,
}

impl Period {
    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::validation("period", "must be a month such as \"2026-11\"");
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let start = NaiveDate::from_ymd_opt(year.parse().map_err(|_| bad())?, month.parse().map_err(|_| bad())?, 1)
            .ok_or_else(bad)?;
        Ok(Self { start })
    }

    /// The period containing `date`.
    pub fn containing(date: NaiveDate) -> Self {
        Self { start: date.with_day(1).unwrap_or(date) }
    }

    /// The first day of the next period.
    pub fn end(&self) -> NaiveDate {
        self.start.checked_add_months(Months::new(1)).unwrap_or(self.start)
    }

    /// The next period.
    pub fn next(&self) -> Self {
        Self { start: self.end() }
    }

    /// `YYYY-MM`.
    pub fn label(&self) -> String {
        self.start.format("%Y-%m").to_string()
    }

    /// Whether `date` falls in this period.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date < self.end()
    }
}

/// A billing cycle: the span one recurring price covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// First day.
    pub start: NaiveDate,
    /// First day after.
    pub end: NaiveDate,
}

impl Cycle {
    /// Days in the cycle.
    pub fn days(&self) -> u32 {
        u32::try_from((self.end - self.start).num_days()).unwrap_or(0)
    }
}

fn date(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

/// The day `months` after `anchor`, on the anchor's day of month where the month has it.
fn after(anchor: NaiveDate, months: u32) -> NaiveDate {
    anchor.checked_add_months(Months::new(months)).unwrap_or(anchor)
}

/// The cycle of `subscription` that contains `day`: calendar months for MONTHLY billing;
/// for ANNUAL and UPFRONT, within the term containing `day`. Terms follow each other from
/// the subscription's anchor (the first term's start, when it was bought), each its term's
/// length, so a change is prorated over the cycle it happened in even when it is billed
/// after a renewal.
pub fn cycle_containing(subscription: &subscription::Model, day: NaiveDate) -> Cycle {
    let anchor = date(subscription.created_at);
    let months = match subscription.term {
        Term::P1m => 1,
        Term::P1y => 12,
        Term::P3y => 36,
    };
    let term = |k: u32| (after(anchor, months * k), after(anchor, months * (k + 1)));
    let mut k = 0;
    while k < 10_000 && term(k).1 <= day {
        k += 1;
    }
    let (term_start, term_end) = term(k);
    match subscription.billing_frequency {
        BillingFrequency::Monthly => {
            let period = Period::containing(day);
            Cycle { start: period.start, end: period.end() }
        }
        BillingFrequency::Upfront => Cycle { start: term_start, end: term_end },
        BillingFrequency::Annual => {
            let mut year = 0;
            loop {
                let start = after(anchor, months * k + 12 * year);
                let end = after(anchor, months * k + 12 * (year + 1)).min(term_end);
                if day < end || end >= term_end {
                    return Cycle { start, end };
                }
                year += 1;
            }
        }
    }
}

/// The subscription's quantity and status at the start of `day`, from its history.
pub fn state_before(history: &[subscription_change::Model], day: NaiveDate) -> Option<(i32, S)> {
    history.iter().rfind(|c| date(c.occurred_at) < day).map(|c| (c.quantity_after, c.status_after))
}

fn billable(status: S) -> bool {
    matches!(status, S::Pending | S::Provisioning | S::Active | S::Suspended)
}

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
    let prices = (subscription.unit_cost.0, subscription.unit_wholesale.0, subscription.unit_retail.0);
    let mut planned = Vec::new();
    let line =
        |kind, key: String, description: String, quantity: i32, from: NaiveDate, cycle: Cycle, until: NaiveDate| {
            let days_used = u32::try_from((until - from).num_days().max(0)).unwrap_or(0);
            let q = Decimal::from(quantity);
            let p = |unit| prorate(unit, q, days_used, cycle.days(), currency, settings.rounding);
            let (cost, wholesale, retail) = (p(prices.0), p(prices.1), p(prices.2));
            PlannedCharge {
                kind,
                key,
                description,
                quantity: q,
                days_used: Some(days_used),
                days_in_period: Some(cycle.days()),
                service_start: midnight(from),
                service_end: midnight(until),
                unit: (cost.unit_price, wholesale.unit_price, retail.unit_price),
                amount: (cost.amount, wholesale.amount, retail.amount),
            }
        };
    // Where the service stops inside a cycle: the term's end, when it will not renew.
    let service_until = |cycle: Cycle| match subscription.term_end.map(date) {
        Some(end) if !subscription.auto_renew && end < cycle.end && end > cycle.start => end,
        _ => cycle.end,
    };

    // The cycle starting in this period, billed in advance.
    let purchased = history.iter().find(|c| c.kind == K::Purchase).map(|c| date(c.occurred_at));
    // At most one cycle starts in a month: the one containing its last day.
    let last_day = period.end().pred_opt().unwrap_or(period.start);
    let cycle = cycle_containing(subscription, last_day);
    // A term that ended without renewal bills nothing from its end on, whatever the status
    // says at run time (the scheduler may not have expired it yet).
    let ended_before = !subscription.auto_renew && subscription.term_end.is_some_and(|end| date(end) <= cycle.start);
    let cycle_starts_here = period.contains(cycle.start) && purchased.is_some_and(|p| p < cycle.start) && !ended_before;
    let key = format!("cycle:{}", cycle.start);
    if cycle_starts_here
        && !charged.contains(&key)
        && let Some((quantity, status)) = state_before(history, cycle.start)
        && billable(status)
        && quantity > 0
    {
        let until = service_until(cycle);
        let description = format!("{quantity} × cycle {} – {}", cycle.start, until);
        planned.push(line(ChargeKind::Recurring, key, description, quantity, cycle.start, cycle, until));
    }

    // Changes up to the end of this period that were never charged.
    // A purchase the vendor never provisioned is not billed (and reversed if it was).
    let failed = subscription.status == S::Failed;
    for change in history.iter().filter(|c| date(c.occurred_at) < period.end()) {
        let key = format!("change:{}", change.id);
        if charged.contains(&key) {
            continue;
        }
        let day = date(change.occurred_at);
        let (delta, kind, what) = match change.kind {
            K::Purchase if failed => continue,
            K::Purchase => (change.quantity_after, ChargeKind::Proration, "purchase"),
            K::QuantityIncrease => {
                (change.quantity_after - change.quantity_before, ChargeKind::Proration, "seats added")
            }
            K::QuantityDecrease => {
                (change.quantity_after - change.quantity_before, ChargeKind::Refund, "seats removed")
            }
            K::Cancel => (-change.quantity_before, ChargeKind::Refund, "cancelled"),
            K::ProvisioningFailed if failed => {
                // Reverse the purchase line, if one was billed, over the same days.
                let Some(purchase) = history.iter().find(|c| c.kind == K::Purchase) else { continue };
                if !charged.contains(&format!("change:{}", purchase.id)) {
                    continue;
                }
                let purchase_day = date(purchase.occurred_at);
                let cycle = cycle_containing(subscription, purchase_day);
                let until = service_until(cycle);
                let description =
                    format!("provisioning failed: reverse {} × {purchase_day} – {until}", purchase.quantity_after);
                planned.push(line(
                    ChargeKind::Refund,
                    key,
                    description,
                    -purchase.quantity_after,
                    purchase_day,
                    cycle,
                    until,
                ));
                continue;
            }
            _ => continue,
        };
        if delta == 0 {
            continue;
        }
        let cycle = cycle_containing(subscription, day);
        let kind = if day < period.start && kind != ChargeKind::Refund { ChargeKind::Adjustment } else { kind };
        if change.kind == K::Cancel && settings.cancellation_refund == CancellationRefund::FullWithin24HoursThenHourly {
            planned.push(cancellation_refund(subscription, change, key.clone(), prices, currency, settings));
        } else {
            let until = service_until(cycle);
            let description = format!("{what}: {delta:+} × {day} – {until}");
            planned.push(line(kind, key.clone(), description, delta, day, cycle, until));
        }
        // The next cycle may have been billed in advance before this change was known (an
        // anniversary later in a month already run): it is billed for the seats in force at
        // its start, so the change applies to it too.
        let next = cycle_containing(subscription, cycle.end);
        if next.start > day && charged.contains(&format!("cycle:{}", next.start)) {
            let until = service_until(next);
            let description = format!("{what}: {delta:+} × {} – {until} (billed in advance)", next.start);
            planned.push(line(
                kind,
                format!("{key}:cycle:{}", next.start),
                description,
                delta,
                next.start,
                next,
                until,
            ));
        }
    }
    Ok(planned)
}

/// The refund of a cancellation under `FullWithin24HoursThenHourly`.
fn cancellation_refund(
    subscription: &subscription::Model,
    change: &subscription_change::Model,
    key: String,
    prices: (Decimal, Decimal, Decimal),
    currency: Currency,
    settings: BillingSettings,
) -> PlannedCharge {
    let at = change.occurred_at;
    let cycle = cycle_containing(subscription, date(at));
    let term_start = subscription.term_start.unwrap_or(at);
    let q = Decimal::from(-change.quantity_before);
    let (from, used, of, unit_name) = if at - term_start <= chrono::Duration::hours(24) {
        // In full: the days billed from the term's start (or the cycle's) to the cycle's end.
        let from = date(term_start).max(cycle.start);
        let days = u32::try_from((cycle.end - from).num_days().max(0)).unwrap_or(0);
        (midnight(from), days, cycle.days(), "days")
    } else {
        let hours = |from: DateTime<Utc>| u32::try_from((midnight(cycle.end) - from).num_hours().max(0)).unwrap_or(0);
        (at, hours(at), hours(midnight(cycle.start)), "hours")
    };
    let p = |unit| prorate(unit, q, used, of, currency, settings.rounding);
    let (cost, wholesale, retail) = (p(prices.0), p(prices.1), p(prices.2));
    PlannedCharge {
        kind: ChargeKind::Refund,
        key,
        description: format!("cancelled: {q} × {used}/{of} {unit_name}"),
        quantity: q,
        days_used: Some(used),
        days_in_period: Some(of),
        service_start: from,
        service_end: midnight(cycle.end),
        unit: (cost.unit_price, wholesale.unit_price, retail.unit_price),
        amount: (cost.amount, wholesale.amount, retail.amount),
    }
}

#[cfg(test)]
mod tests {
    use entity::DbDecimal;
    use entity::enums::{Role, Term};
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
