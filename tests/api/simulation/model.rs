//! The reference model of what a subscription owes, written from `../shared/DOMAIN.md`
//! alone: it shares no code with `switchyard::domain::billing` and knows nothing of how
//! the engine stores or plans charges.
//!
//! From what actually happened to a subscription (its purchase, the seat changes and the
//! cancellation the API accepted, its term and billing frequency, auto-renew), it computes
//! what the customer owes its reseller (retail), the reseller the operator (wholesale) and
//! the operator the vendor (cost), by DOMAIN.md's rules:
//! - recurring fees in advance, one *cycle* at a time: MONTHLY each calendar month, ANNUAL
//!   each year of the term from its start, UPFRONT the whole term; a price is per cycle;
//! - terms renew from the purchase's anchor (a term bought on the 31st ends on the last day
//!   of shorter months and returns to the 31st); without auto-renew, nothing after the end;
//! - every change is billed from its day to the end of its cycle (or the term's end):
//!   `round(price / days in cycle × days used)` per unit, half away from zero at cents, then
//!   × seats; a decrease or a cancellation is the same line, negative;
//! - a cycle is billed for the seats in force at its first day, and not at all when the
//!   subscription was cancelled or had ended before it.
//!
//! `owed(known_until, billed_through)` is what the runs made so far should have charged:
//! every change known by then, and every cycle starting before `billed_through` (billing
//! in advance), with the seats known by then.

use chrono::{DateTime, Months, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

/// A term's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    P1m,
    P1y,
    P3y,
}

impl Term {
    fn months(self) -> u32 {
        match self {
            Term::P1m => 1,
            Term::P1y => 12,
            Term::P3y => 36,
        }
    }
}

/// How often the recurring fee is billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frequency {
    Monthly,
    Annual,
    Upfront,
}

/// An amount at each of the three prices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amounts {
    pub cost: Decimal,
    pub wholesale: Decimal,
    pub retail: Decimal,
}

impl std::ops::AddAssign for Amounts {
    fn add_assign(&mut self, other: Self) {
        self.cost += other.cost;
        self.wholesale += other.wholesale;
        self.retail += other.retail;
    }
}

/// Something that happened to a subscription after its purchase and was accepted.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// The seat count became `to`.
    Seats { at: DateTime<Utc>, to: i32 },
    /// Cancelled.
    Cancel { at: DateTime<Utc> },
}

impl Event {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Event::Seats { at, .. } | Event::Cancel { at } => *at,
        }
    }
}

/// A subscription as its buyer knows it.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub bought: DateTime<Utc>,
    pub seats: i32,
    pub term: Term,
    pub frequency: Frequency,
    pub auto_renew: bool,
    /// Price of one seat for one billing cycle, at cost, wholesale and retail (unrounded).
    pub price: Amounts,
    /// Accepted changes, oldest first.
    pub events: Vec<Event>,
}

/// Half away from zero at cents (every currency of the simulation has 2 minor units).
fn cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn days(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

impl Subscription {
    /// The day term `k` (0 for the first) starts: the anchor plus whole terms.
    fn term_start(&self, k: u32) -> NaiveDate {
        let anchor = self.bought.date_naive();
        anchor.checked_add_months(Months::new(self.term.months() * k)).unwrap_or(anchor)
    }

    /// The term containing `day`.
    fn term_index(&self, day: NaiveDate) -> u32 {
        let mut k = 0;
        while self.term_start(k + 1) <= day {
            k += 1;
        }
        k
    }

    /// The first day the subscription is no longer in force by its terms alone: the end of
    /// its first term without auto-renew.
    pub fn final_end(&self) -> Option<NaiveDate> {
        (!self.auto_renew).then(|| self.term_start(1))
    }

    /// The billing cycle containing `day`: `[start, end)`.
    fn cycle(&self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        let k = self.term_index(day);
        let (term_start, term_end) = (self.term_start(k), self.term_start(k + 1));
        match self.frequency {
            Frequency::Monthly => {
                let first = NaiveDate::from_ymd_opt(chrono::Datelike::year(&day), chrono::Datelike::month(&day), 1)
                    .unwrap_or(day);
                (first, first.checked_add_months(Months::new(1)).unwrap_or(first))
            }
            Frequency::Upfront => (term_start, term_end),
            Frequency::Annual => {
                let anchor = self.bought.date_naive();
                let mut year = 0;
                loop {
                    let start = anchor.checked_add_months(Months::new(self.term.months() * k + 12 * year));
                    let end = anchor.checked_add_months(Months::new(self.term.months() * k + 12 * (year + 1)));
                    match (start, end) {
                        (Some(start), Some(end)) if day < end => return (start, end.min(term_end)),
                        (Some(_), Some(_)) => year += 1,
                        _ => return (term_start, term_end),
                    }
                }
            }
        }
    }

    /// One line: `seats` (negative for a refund) from `from` to the end of its cycle, or to
    /// the end of the service by its terms if that comes first.
    fn line(&self, seats: i32, from: NaiveDate) -> Amounts {
        let (start, end) = self.cycle(from);
        let until = match self.final_end() {
            Some(last) if last < end => last.max(from),
            _ => end,
        };
        let (used, of) = (Decimal::from(days(from, until)), Decimal::from(days(start, end)));
        let seats = Decimal::from(seats);
        // Multiply before dividing: a midpoint such as 6.01 × 15 / 30 = 3.005 stays exact.
        let prorate = |price: Decimal| cents(price * used / of) * seats;
        Amounts {
            cost: prorate(self.price.cost),
            wholesale: prorate(self.price.wholesale),
            retail: prorate(self.price.retail),
        }
    }

    /// Seats in force at the start of `day`, counting only `events`.
    fn seats_on(&self, events: &[Event], day: NaiveDate) -> Option<i32> {
        let mut seats = self.seats;
        for event in events.iter().filter(|e| e.at().date_naive() < day) {
            match event {
                Event::Seats { to, .. } => seats = *to,
                Event::Cancel { .. } => return None,
            }
        }
        Some(seats)
    }

    /// What the runs should have charged by `known_until`, having billed every period
    /// before `billed_through` (a period's first day).
    pub fn owed(&self, known_until: DateTime<Utc>, billed_through: NaiveDate) -> Amounts {
        let known: Vec<Event> = self.events.iter().copied().filter(|e| e.at() < known_until).collect();
        let bought = self.bought.date_naive();
        let mut total = self.line(self.seats, bought);
        // Cycles after the purchase's, billed in advance while the subscription is in force.
        let mut day = self.cycle(bought).1;
        while day < billed_through {
            let ended = self.final_end().is_some_and(|last| day >= last);
            if ended {
                break;
            }
            let Some(seats) = self.seats_on(&known, day) else { break };
            total += self.line(seats, day);
            day = self.cycle(day).1;
        }
        // Every change known, from its day to the end of its cycle.
        let mut seats = self.seats;
        for event in &known {
            match event {
                Event::Seats { at, to } => {
                    total += self.line(to - seats, at.date_naive());
                    seats = *to;
                }
                Event::Cancel { at } => {
                    total += self.line(-seats, at.date_naive());
                    break;
                }
            }
        }
        total
    }

    /// The start of the term in force at `at` (a renewal opens a new 168 h window).
    pub fn term_start_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let k = {
            let mut k = 0;
            while self.term_start_time(k + 1) <= at {
                k += 1;
            }
            k
        };
        self.term_start_time(k)
    }

    fn term_start_time(&self, k: u32) -> DateTime<Utc> {
        self.bought.checked_add_months(Months::new(self.term.months() * k)).unwrap_or(self.bought)
    }

    /// Whether the subscription is in force at `at` (bought, not cancelled, not past the end
    /// of a term that does not renew).
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        let cancelled = self.events.iter().any(|e| matches!(e, Event::Cancel { at: when } if *when <= at));
        let ended = !self.auto_renew && self.term_start_time(1) <= at;
        self.bought <= at && !cancelled && !ended
    }

    /// Seats now.
    pub fn current_seats(&self) -> i32 {
        self.events.iter().fold(self.seats, |seats, e| match e {
            Event::Seats { to, .. } => *to,
            Event::Cancel { .. } => seats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    fn monthly(price: Decimal, bought: DateTime<Utc>, seats: i32) -> Subscription {
        Subscription {
            bought,
            seats,
            term: Term::P1m,
            frequency: Frequency::Monthly,
            auto_renew: true,
            price: Amounts { cost: price, wholesale: price, retail: price },
            events: vec![],
        }
    }

    #[test]
    fn the_partner_center_vector() {
        // $4/month, bought 2 November: 29 of 30 days; 1 seat 3.87, 2 seats 7.74.
        let november_only = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let one = monthly(dec!(4), at(2026, 11, 2), 1).owed(at(2026, 11, 3), november_only);
        assert_eq!(one.retail, dec!(3.87));
        let two = monthly(dec!(4), at(2026, 11, 2), 2).owed(at(2026, 11, 3), november_only);
        assert_eq!(two.retail, dec!(7.74));
    }

    #[test]
    fn a_term_bought_on_the_31st_keeps_its_anchor() {
        let mut sub = monthly(dec!(31), at(2027, 1, 31), 1);
        sub.term = Term::P1m;
        let ends: Vec<NaiveDate> = (1..=4).map(|k| sub.term_start(k)).collect();
        let expected = [(2, 28), (3, 31), (4, 30), (5, 31)].map(|(m, d)| NaiveDate::from_ymd_opt(2027, m, d).unwrap());
        assert_eq!(ends, expected);
    }

    #[test]
    fn nothing_is_owed_after_a_term_that_does_not_renew() {
        // P1M bought 25 November without auto-renew: 6/30 of November, 24/31 of December.
        let mut sub = monthly(dec!(10), at(2026, 11, 25), 3);
        sub.auto_renew = false;
        let through_february = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        let owed = sub.owed(at(2027, 2, 2), through_february);
        assert_eq!(owed.retail, dec!(2.00) * dec!(3) + dec!(7.74) * dec!(3));
    }

    #[test]
    fn a_cancellation_refunds_the_rest_of_the_cycle() {
        // 3 seats at $30 bought 2 November, cancelled on the 5th: 29/30 billed, 26/30 refunded.
        let mut sub = monthly(dec!(30), at(2026, 11, 2), 3);
        sub.events.push(Event::Cancel { at: at(2026, 11, 5) });
        let owed = sub.owed(at(2026, 12, 2), NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
        assert_eq!(owed.retail, dec!(87.00) - dec!(78.00));
    }

    #[test]
    fn annual_cycles_run_from_the_term_start() {
        let mut sub = monthly(dec!(365), at(2027, 1, 31), 1);
        sub.term = Term::P3y;
        sub.frequency = Frequency::Annual;
        let day = NaiveDate::from_ymd_opt;
        assert_eq!(sub.cycle(day(2028, 3, 1).unwrap()), (day(2028, 1, 31).unwrap(), day(2029, 1, 31).unwrap()));
        assert_eq!(sub.cycle(day(2030, 2, 1).unwrap()), (day(2030, 1, 31).unwrap(), day(2031, 1, 31).unwrap()));
    }
}
