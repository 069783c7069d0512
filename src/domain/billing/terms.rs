//! The calendar of billing: periods (calendar months in UTC), billing cycles, and a
//! subscription's terms as its change history records them, with the *segments* (a cycle
//! cut at the term boundaries) that recurring lines cover. Pure functions of the history.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use entity::enums::{BillingFrequency, SubscriptionChangeKind as K, SubscriptionStatus as S, Term};
use entity::{subscription, subscription_change};
use rust_decimal::Decimal;

use crate::domain::error::{Error, Result};

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

pub(super) fn date(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

pub(crate) fn midnight(day: NaiveDate) -> DateTime<Utc> {
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

pub(super) fn billable(status: S) -> bool {
    matches!(status, S::Pending | S::Provisioning | S::Active | S::Suspended)
}

/// Unit prices per billing cycle: (cost, wholesale, retail).
pub(super) type Prices = (Decimal, Decimal, Decimal);

/// A subscription's terms as its history records them: each term starts a whole term after
/// the previous one from the anchor (the first term's start); the first term has the
/// purchase's prices, each renewed term the prices its renewal re-read. The term after the
/// last one on record is *expected* while auto-renew is on and the subscription in force:
/// its first cycle is billed in advance at the current term's prices, and the renewal or
/// expiry, once on record, corrects that charge.
pub(super) struct Terms<'a> {
    subscription: &'a subscription::Model,
    anchor: NaiveDate,
    months: u32,
    /// Prices of the terms on record, the first one's first.
    pub(super) prices: Vec<Prices>,
    /// The RENEW changes, in order: the n-th opens term n.
    pub(super) renewals: Vec<i64>,
    /// The term after the last on record is expected (auto-renew on, in force or pending, not expired).
    expected: bool,
}

impl<'a> Terms<'a> {
    pub(super) fn new(subscription: &'a subscription::Model, history: &[subscription_change::Model]) -> Self {
        let row = (subscription.unit_cost.0, subscription.unit_wholesale.0, subscription.unit_retail.0);
        // Changes recorded before prices were kept on them fall back to the row's.
        let recorded = |c: &subscription_change::Model| match (c.unit_cost, c.unit_wholesale, c.unit_retail) {
            (Some(cost), Some(wholesale), Some(retail)) => (cost.0, wholesale.0, retail.0),
            _ => row,
        };
        let mut prices = vec![history.iter().find(|c| c.kind == K::Purchase).map_or(row, recorded)];
        let mut renewals = Vec::new();
        for change in history.iter().filter(|c| c.kind == K::Renew) {
            prices.push(recorded(change));
            renewals.push(change.id);
        }
        let expired = history.iter().any(|c| c.kind == K::Expire);
        // A purchase still pending counts as in force (billed in advance, reversed if it fails).
        let expected = !expired && subscription.auto_renew && billable(subscription.status);
        let months = match subscription.term {
            Term::P1m => 1,
            Term::P1y => 12,
            Term::P3y => 36,
        };
        Self { subscription, anchor: date(subscription.created_at), months, prices, renewals, expected }
    }

    /// The first day of term `k` (0 for the first).
    pub(super) fn start(&self, k: u32) -> NaiveDate {
        after(self.anchor, self.months * k)
    }

    /// The term containing `day`.
    pub(super) fn index(&self, day: NaiveDate) -> u32 {
        let mut k = 0;
        while k < 10_000 && self.start(k + 1) <= day {
            k += 1;
        }
        k
    }

    /// Terms on record: the first and every renewal.
    pub(super) fn on_record(&self) -> u32 {
        u32::try_from(self.prices.len()).unwrap_or(u32::MAX)
    }

    /// The prices term `k` is charged at: its own once on record; the current term's while
    /// it is only expected; none for a term that never began or is not expected.
    pub(super) fn prices(&self, k: u32) -> Option<Prices> {
        let recorded = self.on_record();
        match usize::try_from(k) {
            Ok(index) if k < recorded => self.prices.get(index).copied(),
            _ if k == recorded && self.expected => self.prices.last().copied(),
            _ => None,
        }
    }

    /// The segments after `segment` that were billed already, in order, up to the first that
    /// was not.
    pub(super) fn billed_after(&self, segment: Segment, charged: &HashSet<String>) -> Vec<Segment> {
        let mut billed = Vec::new();
        let mut previous = segment;
        for _ in 0..10_000 {
            let next = self.segment(previous.end);
            if next.start <= previous.start || !next.charged(charged) {
                break;
            }
            billed.push(next);
            previous = next;
        }
        billed
    }

    /// The segment containing `day`: its billing cycle cut at the terms' boundaries (a
    /// calendar month that a renewal splits is two segments, each prorated over the month).
    pub(super) fn segment(&self, day: NaiveDate) -> Segment {
        let term = self.index(day);
        let cycle = cycle_containing(self.subscription, day);
        Segment { start: cycle.start.max(self.start(term)), end: cycle.end.min(self.start(term + 1)), cycle, term }
    }
}

/// The part of a billing cycle inside one term: what one recurring line covers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Segment {
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
    pub(super) cycle: Cycle,
    pub(super) term: u32,
}

impl Segment {
    /// Its last day (`end` is exclusive), as descriptions and invoices show a period.
    pub(super) fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.end)
    }

    /// Its charge key; `expected` for a segment billed before its term was on record.
    pub(super) fn key(&self, expected: bool) -> String {
        let mut key = format!("cycle:{}", self.start);
        if self.end < self.cycle.end {
            key.push_str(&format!(":to:{}", self.end));
        }
        if expected {
            key.push_str(":expected");
        }
        key
    }

    /// Billed before its term was on record. Before months were split at renewals, a whole
    /// month was one line under the month's key: it counts as billing a month's second
    /// segment that way.
    pub(super) fn charged_as_expected(&self, charged: &HashSet<String>) -> bool {
        charged.contains(&self.key(true))
            || (self.start > self.cycle.start && charged.contains(&format!("cycle:{}", self.cycle.start)))
    }

    /// Billed, under whichever key.
    pub(super) fn charged(&self, charged: &HashSet<String>) -> bool {
        charged.contains(&self.key(false))
            || charged.contains(&format!("cycle:{}", self.cycle.start))
            || self.charged_as_expected(charged)
    }
}
