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
    /// Auto-renew turned on or off.
    AutoRenew { at: DateTime<Utc>, on: bool },
}

impl Event {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Event::Seats { at, .. } | Event::Cancel { at } | Event::AutoRenew { at, .. } => *at,
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
    /// Auto-renew at purchase.
    pub auto_renew: bool,
    /// The price list for this buyer over time: from each instant on, the price of one seat
    /// for one billing cycle at cost, wholesale and retail (unrounded). A term is bought at
    /// the prices in force when it starts and keeps them (the price lock).
    pub prices: Vec<(DateTime<Utc>, Amounts)>,
    /// Accepted changes, oldest first.
    pub events: Vec<Event>,
    /// The vendor's answers to the purchase, oldest first: when, and whether it provisioned
    /// it. None yet: the purchase is pending (billed as bought). The first a refusal: nothing
    /// is owed for the purchase, and a later success (an operator's retry) is billed from
    /// its day as if bought then, at the prices of the purchase.
    pub provisioning: Vec<(DateTime<Utc>, bool)>,
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

    /// The instant term `k` starts (the scheduler renews then).
    fn term_start_time(&self, k: u32) -> DateTime<Utc> {
        self.bought.checked_add_months(Months::new(self.term.months() * k)).unwrap_or(self.bought)
    }

    /// The term containing `day`.
    fn term_index(&self, day: NaiveDate) -> u32 {
        let mut k = 0;
        while self.term_start(k + 1) <= day {
            k += 1;
        }
        k
    }

    /// Whether auto-renew was on just before `at`.
    fn auto_renew_before(&self, at: DateTime<Utc>) -> bool {
        self.events.iter().filter(|e| e.at() < at).fold(self.auto_renew, |on, e| match e {
            Event::AutoRenew { on, .. } => *on,
            _ => on,
        })
    }

    fn cancelled_before(&self, at: DateTime<Utc>) -> bool {
        self.events.iter().any(|e| matches!(e, Event::Cancel { at: when } if *when < at))
    }

    /// The price list in force at `at`.
    fn price_at(&self, at: DateTime<Utc>) -> Amounts {
        self.prices.iter().rfind(|(from, _)| *from <= at).or(self.prices.first()).map(|(_, p)| *p).unwrap_or_default()
    }

    /// Whether term `k` began by `now`: the first always; a later one if the one before
    /// did and, when it ended, auto-renew was on and the subscription not cancelled.
    fn began(&self, k: u32, now: DateTime<Utc>) -> bool {
        (1..=k).all(|j| {
            let at = self.term_start_time(j);
            at <= now && self.auto_renew_before(at) && !self.cancelled_before(at)
        })
    }

    /// What term `k` is charged at, seen at `now`: the prices in force when it began; for
    /// the next term, not begun yet but expected (auto-renew on now), the current term's
    /// (billed in advance, corrected once it renews or does not); otherwise nothing.
    fn term_price(&self, k: u32, now: DateTime<Utc>) -> Option<Amounts> {
        if self.began(k, now) {
            return Some(self.price_at(self.term_start_time(k)));
        }
        let previous = k.checked_sub(1)?;
        let expected = self.began(previous, now)
            && self.term_start_time(k) > now
            && self.auto_renew_before(now + chrono::Duration::seconds(1))
            && !self.cancelled_before(now + chrono::Duration::seconds(1));
        expected.then(|| self.price_at(self.term_start_time(previous)))
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

    /// The part of the cycle containing `day` that lies in `day`'s term: `[start, end)`. A
    /// price is per cycle, and a term renews at its own prices, so a calendar month that a
    /// renewal splits is charged in two parts, each prorated over the whole month.
    fn segment(&self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        let k = self.term_index(day);
        let (start, end) = self.cycle(day);
        (start.max(self.term_start(k)), end.min(self.term_start(k + 1)))
    }

    /// One line: `seats` (negative for a refund) at `price` from `from` to the end of its
    /// segment: `round(price / days in cycle × days used)` per seat, then × seats.
    fn line(&self, seats: i32, from: NaiveDate, price: Amounts) -> Amounts {
        let (start, end) = self.cycle(from);
        let until = self.segment(from).1;
        let (used, of) = (Decimal::from(days(from, until)), Decimal::from(days(start, end)));
        let seats = Decimal::from(seats);
        // Multiply before dividing: a midpoint such as 6.01 × 15 / 30 = 3.005 stays exact.
        let prorate = |price: Decimal| cents(price * used / of) * seats;
        Amounts { cost: prorate(price.cost), wholesale: prorate(price.wholesale), retail: prorate(price.retail) }
    }

    /// Seats in force at the start of `day`, counting only `events`.
    fn seats_on(&self, events: &[Event], day: NaiveDate) -> Option<i32> {
        let mut seats = self.seats;
        for event in events.iter().filter(|e| e.at().date_naive() < day) {
            match event {
                Event::Seats { to, .. } => seats = *to,
                Event::Cancel { .. } => return None,
                Event::AutoRenew { .. } => {}
            }
        }
        Some(seats)
    }

    /// When billing starts, seen at `at`: the purchase (pending or provisioned at once), or
    /// the first success after a refusal; None if refused and not (yet) provisioned.
    fn billed_from(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut known = self.provisioning.iter().filter(|(when, _)| *when <= at);
        match known.next() {
            None | Some((_, true)) => Some(self.bought),
            Some((_, false)) => known.find(|(_, ok)| *ok).map(|(when, _)| *when),
        }
    }

    /// What the runs should have charged by `now`, having billed every period before
    /// `billed_through` (a period's first day).
    pub fn owed(&self, now: DateTime<Utc>, billed_through: NaiveDate) -> Amounts {
        let Some(from) = self.billed_from(now) else { return Amounts::default() };
        let known: Vec<Event> = self.events.iter().copied().filter(|e| e.at() < now).collect();
        let first = from.date_naive();
        let mut total = self.line(self.seats, first, self.price_at(self.bought));
        // Segments after the purchase's, billed in advance while the subscription is in
        // force; of a term not begun yet, only its first.
        let mut day = self.segment(first).1;
        while day < billed_through {
            let k = self.term_index(day);
            let Some(price) = self.term_price(k, now) else { break };
            if !self.began(k, now) && day != self.term_start(k) {
                break;
            }
            let Some(seats) = self.seats_on(&known, day) else { break };
            total += self.line(seats, day, price);
            day = self.segment(day).1;
        }
        // Every change known, from its day to the end of its segment, at its term's prices
        // (a change dated in a term that has not begun is billed once it has).
        let mut seats = self.seats;
        for event in &known {
            let day = event.at().date_naive();
            let k = self.term_index(day);
            let price = if self.began(k, now) { self.term_price(k, now) } else { None };
            match event {
                Event::Seats { to, .. } => {
                    if let Some(price) = price {
                        total += self.line(to - seats, day, price);
                    }
                    seats = *to;
                }
                Event::Cancel { .. } => {
                    if let Some(price) = price {
                        total += self.line(-seats, day, price);
                    }
                    break;
                }
                Event::AutoRenew { .. } => {}
            }
        }
        total
    }

    /// The start of the term in force at `at` (a renewal opens a new 168 h window).
    pub fn term_start_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let mut k = 0;
        while self.term_start_time(k + 1) <= at {
            k += 1;
        }
        self.term_start_time(k)
    }

    /// Whether the subscription is in force at `at` (bought, not cancelled, its term begun).
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        let mut k = 0;
        while self.term_start_time(k + 1) <= at {
            k += 1;
        }
        let provisioned = self.provisioning.iter().find(|(when, ok)| *ok && *when <= at).is_some();
        provisioned
            && self.billed_from(at).is_some()
            && !self.cancelled_before(at + chrono::Duration::seconds(1))
            && self.began(k, at)
    }

    /// The vendor refused the purchase and no retry has provisioned it yet.
    pub fn refused(&self) -> bool {
        self.provisioning.first().is_some_and(|(_, ok)| !ok) && !self.provisioning.iter().any(|(_, ok)| *ok)
    }

    /// Still waiting for the vendor's first answer.
    pub fn pending(&self) -> bool {
        self.provisioning.is_empty()
    }

    /// Seats now.
    pub fn current_seats(&self) -> i32 {
        self.events.iter().fold(self.seats, |seats, e| match e {
            Event::Seats { to, .. } => *to,
            _ => seats,
        })
    }

    /// Auto-renew now.
    pub fn auto_renew_now(&self) -> bool {
        self.events.iter().fold(self.auto_renew, |on, e| match e {
            Event::AutoRenew { on, .. } => *on,
            _ => on,
        })
    }
}

/// A usage price of the offer, from an instant on (per unit, unrounded).
#[derive(Clone, Copy, Debug)]
pub struct UsagePrice {
    pub from: DateTime<Utc>,
    pub cost: Decimal,
    pub list: Decimal,
}

/// A reseller's markups from an instant on: its tier's over cost, its own over wholesale.
#[derive(Clone, Copy, Debug)]
pub struct Markups {
    pub from: DateTime<Utc>,
    pub tier: Decimal,
    pub retail: Option<Decimal>,
}

/// A usage record as sent, and the run that billed it (its period and when it ran).
#[derive(Clone, Debug)]
pub struct UsageRecord {
    pub occurred: DateTime<Utc>,
    pub quantity: Decimal,
    pub billed: Option<(String, DateTime<Utc>)>,
}

/// What the billed usage records owe, by DOMAIN.md: usage in arrears, rated at the usage
/// price in force when it occurred; wholesale is cost plus the tier markup and retail the
/// reseller's markup over wholesale, else the list price, both as they are when the run
/// rates it; one line per usage month, price and run, rounded half away from zero at cents
/// (`0.067 × 55 = 3.685 → 3.69`).
pub fn usage_owed(records: &[UsageRecord], prices: &[UsagePrice], markups: &[Markups]) -> Amounts {
    // (usage month, price, billing period, when that run rated it) → units.
    type Group = (String, usize, String, DateTime<Utc>);
    let mut groups: Vec<(Group, Decimal)> = Vec::new();
    for record in records {
        let Some((period, ran)) = &record.billed else { continue };
        let Some(price) = prices.iter().rposition(|p| p.from <= record.occurred) else { continue };
        let month = record.occurred.format("%Y-%m").to_string();
        let key = (month, price, period.clone(), *ran);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, quantity)) => *quantity += record.quantity,
            None => groups.push((key, record.quantity)),
        }
    }
    let mut total = Amounts::default();
    for ((_, price, _, ran), quantity) in groups {
        let price = prices[price];
        let Some(markup) = markups.iter().rfind(|m| m.from <= ran) else { continue };
        let wholesale = price.cost * (Decimal::ONE + markup.tier);
        let retail = markup.retail.map_or(price.list, |m| wholesale * (Decimal::ONE + m));
        total += Amounts {
            cost: cents(price.cost * quantity),
            wholesale: cents(wholesale * quantity),
            retail: cents(retail * quantity),
        };
    }
    total
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
            prices: vec![(bought, Amounts { cost: price, wholesale: price, retail: price })],
            events: vec![],
            provisioning: vec![(bought, true)],
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

    /// A P1M at 10.00 bought 15 November; from 1 December it costs 20.00; billed through January.
    fn renewing_mid_december(events: Vec<Event>, auto_renew: bool) -> Decimal {
        let mut sub = monthly(dec!(10), at(2026, 11, 15), 1);
        sub.auto_renew = auto_renew;
        let doubled = Amounts { cost: dec!(20), wholesale: dec!(20), retail: dec!(20) };
        sub.prices.push((at(2026, 12, 1), doubled));
        sub.events = events;
        sub.owed(at(2027, 1, 1), NaiveDate::from_ymd_opt(2027, 2, 1).unwrap()).retail
    }

    #[test]
    fn a_renewed_term_is_charged_at_the_prices_in_force_when_it_began() {
        // November 16/30 of 10.00; December 14/31 of 10.00 and 17/31 of 20.00; January
        // 14/31 and 17/31 of 20.00 (the term renewing on 15 January is expected).
        let owed = renewing_mid_december(vec![], true);
        assert_eq!(owed, dec!(5.33) + dec!(4.52) + dec!(10.97) + dec!(9.03) + dec!(10.97));
    }

    #[test]
    fn auto_renew_decides_when_the_term_ends() {
        let off = Event::AutoRenew { at: at(2026, 12, 5), on: false };
        assert_eq!(renewing_mid_december(vec![off], true), dec!(5.33) + dec!(4.52));
        let on = Event::AutoRenew { at: at(2026, 12, 5), on: true };
        assert_eq!(
            renewing_mid_december(vec![on], false),
            dec!(5.33) + dec!(4.52) + dec!(10.97) + dec!(9.03) + dec!(10.97)
        );
    }

    #[test]
    fn a_refused_purchase_owes_nothing_until_a_retry_provisions_it() {
        // 2 seats at 7.40 ordered 20 November, pending through December's run, refused on
        // 2 December, provisioned on a retry on 10 December.
        let mut sub = monthly(dec!(7.40), at(2026, 11, 20), 2);
        sub.term = Term::P1y;
        sub.provisioning = vec![];
        let through_december = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        assert_eq!(sub.owed(at(2026, 12, 1), through_december).retail, dec!(5.42) + dec!(14.80), "pending: billed");
        sub.provisioning.push((at(2026, 12, 2), false));
        assert_eq!(sub.owed(at(2026, 12, 3), through_december).retail, dec!(0));
        sub.provisioning.push((at(2026, 12, 10), true));
        // 2 × round(7.40 × 22/31) for December; January 2 × 7.40.
        let through_january = NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
        assert_eq!(sub.owed(at(2027, 1, 1), through_january).retail, dec!(10.50) + dec!(14.80));
    }

    #[test]
    fn usage_is_rated_at_the_price_of_its_time_and_rounded_per_line() {
        let t = |d| at(2026, 11, d);
        let prices = [
            UsagePrice { from: t(1), cost: dec!(0.80), list: dec!(0.92) },
            UsagePrice { from: t(15), cost: dec!(1.00), list: dec!(1.10) },
        ];
        let markups = [Markups { from: t(1), tier: dec!(0.15), retail: Some(dec!(0.2)) }];
        let billed = Some(("2026-12".to_owned(), at(2026, 12, 1)));
        let records = [
            UsageRecord { occurred: t(10), quantity: dec!(20), billed: billed.clone() },
            UsageRecord { occurred: t(20), quantity: dec!(17.5), billed },
            UsageRecord { occurred: t(25), quantity: dec!(99), billed: None },
        ];
        // 20 × 1.104 = 22.08 and 17.5 × 1.38 = 24.15 (the example, at its own prices).
        assert_eq!(usage_owed(&records, &prices, &markups).retail, dec!(22.08) + dec!(24.15));
        // Without a reseller markup: the list price; 55 × 0.067 = 3.685 → 3.69.
        let list = [UsagePrice { from: t(1), cost: dec!(0.057), list: dec!(0.067) }];
        let plain = [Markups { from: t(1), tier: dec!(0.15), retail: None }];
        let one =
            [UsageRecord { occurred: t(10), quantity: dec!(55), billed: Some(("2026-12".into(), at(2026, 12, 1))) }];
        assert_eq!(usage_owed(&one, &list, &plain).retail, dec!(3.69));
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
