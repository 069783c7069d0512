//! Judging one finding (a pure function): the statement's rows of one vendor subscription,
//! cycle and kind of unit, summed, against our charges for the same service, summed, under
//! explicit tolerances. The category, its amount and the rule that decided it, in words with
//! the numbers, so an operator can check it by hand.
//!
//! The checks, in order (the first that holds decides):
//! 1. no subscription of ours → UNKNOWN_SUBSCRIPTION (the vendor's amount);
//! 2. no charge of ours for the cycle → UNBILLED (the vendor's amount: leakage); a credit from
//!    the vendor for a cycle we never charged is a QUANTITY_MISMATCH;
//! 3. our cost prices in another currency than the vendor's pricing currency → PRICE_MISMATCH;
//! 4. the vendor's unit price is not our cost price in force → PRICE_MISMATCH;
//! 5. the vendor's quantity (seats at the cycle's end, or units used), or its seat-days,
//!    differ from ours by more than the quantity tolerance → QUANTITY_MISMATCH;
//! 6. the vendor's amount differs from what its own rule gives on our cost prices and
//!    quantities (`expected`) by more than the amount tolerance → PRICE_MISMATCH;
//! 7. what we billed the reseller (wholesale, in the vendor's billing currency at its rate)
//!    is less than the vendor charged, by more than the amount tolerance → UNDERBILLED
//!    (the difference: leakage);
//! 8. else MATCHED.
//!
//! A cycle we billed that the vendor did not charge is MISSING_VENDOR_CHARGE when the
//! subscription was provisioned at the vendor (drift: the amount its rule gives), and
//! OVERBILLED when it never was (what the reseller was billed).
//! For 5–7 the amount is the vendor's minus the expected (positive: the vendor charged more).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::statement::{StatementFormat, UnitKind};
use crate::domain::money::{Currency, round_to_minor_units};

/// What a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Matched,
    Unbilled,
    Underbilled,
    Overbilled,
    QuantityMismatch,
    PriceMismatch,
    UnknownSubscription,
    MissingVendorCharge,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Self; 8] = [
        Self::Matched,
        Self::Unbilled,
        Self::Underbilled,
        Self::Overbilled,
        Self::QuantityMismatch,
        Self::PriceMismatch,
        Self::UnknownSubscription,
        Self::MissingVendorCharge,
    ];

    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "MATCHED",
            Self::Unbilled => "UNBILLED",
            Self::Underbilled => "UNDERBILLED",
            Self::Overbilled => "OVERBILLED",
            Self::QuantityMismatch => "QUANTITY_MISMATCH",
            Self::PriceMismatch => "PRICE_MISMATCH",
            Self::UnknownSubscription => "UNKNOWN_SUBSCRIPTION",
            Self::MissingVendorCharge => "MISSING_VENDOR_CHARGE",
        }
    }

    /// The category named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Revenue the operator lost: what recovery can bill.
    pub fn is_leakage(self) -> bool {
        matches!(self, Self::Unbilled | Self::Underbilled)
    }
}

/// How far the two sides may differ and still agree (exactly 0 unless the operator says).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tolerances {
    /// Of amounts, in the statement's billing currency.
    pub amount: Decimal,
    /// Of quantities (seats or units); seat-days are allowed this many seats over the cycle.
    pub quantity: Decimal,
}

/// The statement's rows of one group, summed.
#[derive(Clone, Debug)]
pub struct VendorSide {
    pub rows: u32,
    pub unit_kind: UnitKind,
    /// Σ subtotal, in `currency`.
    pub amount: Decimal,
    /// Σ quantity, signed as the subtotal (credits negative): seats at the cycle's end, or
    /// units used.
    pub quantity: Decimal,
    /// Σ signed quantity × days charged.
    pub seat_days: Decimal,
    /// The unit prices the rows name (pricing currency).
    pub unit_prices: BTreeSet<Decimal>,
    /// The billing currency.
    pub currency: String,
    /// The pricing currency.
    pub pricing_currency: String,
    /// The exchange rates the rows name (one, normally).
    pub rates: BTreeSet<Decimal>,
    /// Rows of the group in other currencies than its first row's.
    pub mixed_currencies: bool,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

impl VendorSide {
    /// The rate our amounts are converted at: the statement's (the lowest, if its rows differ).
    pub fn rate(&self) -> Decimal {
        self.rates.first().copied().unwrap_or(Decimal::ONE)
    }
}

/// One charge of ours, as the vendor's rule needs it.
#[derive(Clone, Copy, Debug)]
pub struct ChargeFacts {
    /// Seats (negative for refunds) or units.
    pub quantity: Decimal,
    /// The undiscounted cost of one unit for the whole cycle (per unit for usage).
    pub cycle_unit_cost: Decimal,
    /// Days billed and days in the cycle, for prorated lines.
    pub days: Option<(u32, u32)>,
}

/// Our charges of one group, summed.
#[derive(Clone, Debug, Default)]
pub struct OurSide {
    pub charges: Vec<ChargeFacts>,
    /// The subscription's (and its charges') currency.
    pub currency: String,
    pub cost: Decimal,
    pub wholesale: Decimal,
    pub retail: Decimal,
    /// Of `wholesale`, what the next billing run bills (planned, not written yet).
    pub pending: Decimal,
}

impl OurSide {
    fn quantity(&self) -> Decimal {
        self.charges.iter().map(|c| c.quantity).sum()
    }

    fn seat_days(&self) -> Decimal {
        self.charges.iter().map(|c| c.quantity * Decimal::from(c.days.map_or(0, |d| d.0))).sum()
    }

    fn cycle_unit_costs(&self) -> BTreeSet<Decimal> {
        self.charges.iter().filter(|c| !c.quantity.is_zero()).map(|c| c.cycle_unit_cost.normalize()).collect()
    }

    /// What the vendor's rule gives for our charges, at `rate`; None past the bounds.
    pub fn expected(&self, format: &dyn StatementFormat, kind: UnitKind, rate: Decimal) -> Option<Decimal> {
        self.charges.iter().try_fold(Decimal::ZERO, |sum, c| {
            let effective = match c.days {
                Some((used, of)) if of > 0 => {
                    c.cycle_unit_cost.checked_mul(Decimal::from(used))?.checked_div(Decimal::from(of))?
                }
                _ => c.cycle_unit_cost,
            };
            // The vendor truncates the unit price; a refund is the same price, negative.
            let line = format.subtotal(kind, effective, c.quantity.abs(), rate)?;
            sum.checked_add(if c.quantity.is_sign_negative() { -line } else { line })
        })
    }
}

/// What was decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub category: Category,
    /// The category's amount (see the module's documentation).
    pub amount: Decimal,
    /// What the vendor should have charged, by its rule on our cost prices.
    pub expected: Option<Decimal>,
    /// The rule, in words with its numbers.
    pub rule: String,
}

fn judged(category: Category, amount: Decimal, expected: Option<Decimal>, rule: String) -> Judgement {
    Judgement { category, amount, expected, rule }
}

/// Judges a group the statement charged. `subscription` is how it was matched (None: it was
/// not); `ours` our charges for the same cycle (None: none).
pub fn judge_charged(
    format: &dyn StatementFormat,
    vendor: &VendorSide,
    subscription: Option<&str>,
    ours: Option<&OurSide>,
    tolerances: Tolerances,
) -> Judgement {
    let v = vendor.amount;
    let Some(matched) = subscription else {
        return judged(
            Category::UnknownSubscription,
            v,
            None,
            format!("no subscription of ours matches: {}", unmatched_reason(vendor)),
        );
    };
    if vendor.mixed_currencies {
        return judged(
            Category::PriceMismatch,
            v,
            None,
            format!("{matched}; the vendor charged the cycle in several currencies: its rows cannot be summed"),
        );
    }
    // A cycle we charged nothing for, bar a recovery of it, is unbilled.
    let Some(ours) = ours.filter(|o| !o.charges.is_empty() || !o.wholesale.is_zero()) else {
        return if v > Decimal::ZERO {
            judged(
                Category::Unbilled,
                v,
                None,
                format!("{matched}; the vendor charged {v}, we charged nothing for the cycle"),
            )
        } else {
            judged(
                Category::QuantityMismatch,
                v,
                None,
                format!("{matched}; the vendor credited {v} for a cycle we charged nothing for"),
            )
        };
    };
    let rate = vendor.rate();
    let mut rule = format!("{matched}; ");
    // Prices compare in the vendor's pricing currency; what was billed, in its billing one.
    let priced = ours.currency == vendor.pricing_currency;
    if !priced && ours.currency != vendor.currency {
        let _ = write!(
            rule,
            "our prices are in {}, the vendor prices in {} and bills in {}",
            ours.currency, vendor.pricing_currency, vendor.currency
        );
        return judged(Category::PriceMismatch, v, None, rule);
    }
    let expected = if priced && !ours.charges.is_empty() {
        let Some(expected) = ours.expected(format, vendor.unit_kind, rate) else {
            let _ = write!(rule, "our prices are past the arithmetic's bounds");
            return judged(Category::PriceMismatch, v, None, rule);
        };
        Some(expected)
    } else {
        if ours.charges.is_empty() {
            let _ = write!(rule, "only a recovery was charged for the cycle; ");
        } else {
            let _ = write!(
                rule,
                "prices not compared (ours are in {}, the vendor prices in {}); ",
                ours.currency, vendor.pricing_currency
            );
        }
        None
    };
    if let Some(expected) = expected {
        if let Some(judgement) = vendor_side_checks(vendor, ours, expected, tolerances, &mut rule) {
            return judgement;
        }
    } else if !ours.charges.is_empty()
        && let Some(judgement) = quantity_check(vendor, ours, None, tolerances, &mut rule)
    {
        return judgement;
    }
    let (billed, how) = match billed_in(ours, vendor, rate) {
        Some(billed) => billed,
        None => {
            let _ = write!(rule, "our wholesale of {} {} cannot be converted", ours.wholesale, ours.currency);
            return judged(Category::PriceMismatch, v, expected, rule);
        }
    };
    let lag = if ours.pending.is_zero() {
        String::new()
    } else {
        format!(", of which {} {} the next billing run bills", ours.pending, ours.currency)
    };
    if billed < v - tolerances.amount {
        let _ = write!(
            rule,
            "the reseller was billed {billed}{how}{lag} at wholesale for a vendor charge of {v} (tolerance {})",
            tolerances.amount
        );
        return judged(Category::Underbilled, v - billed, expected, rule);
    }
    match expected {
        Some(e) => {
            let _ = write!(
                rule,
                "the vendor charged {v}, its rule on our prices gives {e} (tolerance {})",
                tolerances.amount
            );
        }
        None => {
            let _ = write!(rule, "the vendor charged {v}");
        }
    }
    let _ = write!(rule, "; the reseller was billed {billed}{how}{lag}");
    judged(Category::Matched, v, expected, rule)
}

/// The checks of the vendor's side against our prices: its unit price, its quantities, and
/// its amount against its own rule on our prices (`expected`).
fn vendor_side_checks(
    vendor: &VendorSide,
    ours: &OurSide,
    expected: Decimal,
    tolerances: Tolerances,
    rule: &mut String,
) -> Option<Judgement> {
    let v = vendor.amount;
    let difference = v.checked_sub(expected)?;
    let ours_prices = ours.cycle_unit_costs();
    let vendor_prices: BTreeSet<Decimal> = vendor.unit_prices.iter().map(|p| p.normalize()).collect();
    if !ours_prices.is_empty() && vendor_prices != ours_prices {
        let _ = write!(
            rule,
            "the vendor's unit price {} is not our cost price {} in force; it charged {v}, its rule on our prices gives {expected}",
            list(&vendor_prices),
            list(&ours_prices)
        );
        return Some(judged(Category::PriceMismatch, difference, Some(expected), std::mem::take(rule)));
    }
    if let Some(judgement) = quantity_check(vendor, ours, Some((expected, difference)), tolerances, rule) {
        return Some(judgement);
    }
    if difference.abs() > tolerances.amount {
        let _ = write!(
            rule,
            "the vendor charged {v}, its rule on our cost prices and quantities gives {expected} (tolerance {})",
            tolerances.amount
        );
        return Some(judged(Category::PriceMismatch, difference, Some(expected), std::mem::take(rule)));
    }
    None
}

/// The vendor's quantity (seats at the cycle's end, or units) and seat-days against ours.
fn quantity_check(
    vendor: &VendorSide,
    ours: &OurSide,
    expected: Option<(Decimal, Decimal)>,
    tolerances: Tolerances,
    rule: &mut String,
) -> Option<Judgement> {
    let v = vendor.amount;
    let (vq, oq) = (vendor.quantity, ours.quantity());
    let cycle_days = Decimal::from((vendor.last_day - vendor.first_day).num_days() + 1);
    let seats = vendor.unit_kind == UnitKind::Seats;
    let allowed_days = tolerances.quantity.checked_mul(cycle_days)?;
    let days_differ = seats && vendor.seat_days.checked_sub(ours.seat_days()).is_none_or(|d| d.abs() > allowed_days);
    let quantity_differs = vq.checked_sub(oq).is_none_or(|d| d.abs() > tolerances.quantity);
    if !(quantity_differs || days_differ) {
        return None;
    }
    let what = if seats { "seats" } else { "units" };
    let _ = write!(rule, "the vendor charged {vq} {what}, we {oq}");
    if seats {
        let _ = write!(rule, " ({} seat-days, ours {})", vendor.seat_days.normalize(), ours.seat_days().normalize());
    }
    let _ = write!(rule, " (tolerance {})", tolerances.quantity);
    Some(match expected {
        Some((expected, difference)) => {
            let _ = write!(rule, "; it charged {v}, its rule on our quantities gives {expected}");
            judged(Category::QuantityMismatch, difference, Some(expected), std::mem::take(rule))
        }
        None => judged(Category::QuantityMismatch, v, None, std::mem::take(rule)),
    })
}

/// Judges a cycle we charged that the statement did not: None when nothing was charged net.
/// `provisioned`: the subscription has the vendor's id.
pub fn judge_uncharged(
    format: &dyn StatementFormat,
    kind: UnitKind,
    ours: &OurSide,
    provisioned: bool,
) -> Option<Judgement> {
    let expected = ours.expected(format, kind, Decimal::ONE);
    if ours.wholesale.is_zero() && expected.is_none_or(|e| e.is_zero()) {
        return None;
    }
    Some(if provisioned {
        let amount = expected.unwrap_or_default();
        judged(
            Category::MissingVendorCharge,
            amount,
            expected,
            format!(
                "provisioned at the vendor and billed {} {} at wholesale; the vendor charged nothing (its rule on our prices gives {amount})",
                ours.wholesale, ours.currency
            ),
        )
    } else {
        judged(
            Category::Overbilled,
            ours.wholesale,
            expected,
            format!(
                "billed {} {} at wholesale for a subscription the vendor never provisioned, and the vendor charged nothing",
                ours.wholesale, ours.currency
            ),
        )
    })
}

/// What the reseller was billed, in the vendor's billing currency: as it is when ours is that
/// currency; converted at the statement's rate (rounded to the billing currency's minor
/// units) when ours is the pricing currency.
fn billed_in(ours: &OurSide, vendor: &VendorSide, rate: Decimal) -> Option<(Decimal, String)> {
    if ours.currency == vendor.currency {
        return Some((ours.wholesale, String::new()));
    }
    let currency = Currency::parse(&vendor.currency, "currency").ok()?;
    let converted = round_to_minor_units(ours.wholesale.checked_mul(rate)?, currency);
    Some((converted, format!(" ({} {} at {rate})", ours.wholesale, ours.currency)))
}

fn unmatched_reason(vendor: &VendorSide) -> String {
    format!("{} charged from {} to {}", vendor.rows, vendor.first_day, vendor.last_day)
}

fn list(prices: &BTreeSet<Decimal>) -> String {
    prices.iter().map(Decimal::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::domain::reconciliation::partner_center::PartnerCenter;

    fn day(text: &str) -> NaiveDate {
        text.parse().ok().unwrap_or_default()
    }

    fn vendor(amount: Decimal, quantity: Decimal, days: i64, price: Decimal) -> VendorSide {
        VendorSide {
            rows: 1,
            unit_kind: UnitKind::Seats,
            amount,
            quantity,
            seat_days: quantity * Decimal::from(days),
            unit_prices: [price].into(),
            currency: "USD".into(),
            pricing_currency: "USD".into(),
            rates: [Decimal::ONE].into(),
            mixed_currencies: false,
            first_day: day("2026-12-01"),
            last_day: day("2026-12-31"),
        }
    }

    fn ours(quantity: Decimal, cost: Decimal, days: (u32, u32), wholesale: Decimal) -> OurSide {
        OurSide {
            charges: vec![ChargeFacts { quantity, cycle_unit_cost: cost, days: Some(days) }],
            currency: "USD".into(),
            cost: Decimal::ZERO,
            wholesale,
            retail: Decimal::ZERO,
            pending: Decimal::ZERO,
        }
    }

    #[test]
    fn billing_in_the_statements_currency_is_compared_without_prices() {
        // Ours in EUR, the vendor's prices in USD, its bill in EUR: no price to compare, but
        // what the reseller was billed is, and a shortfall is leakage.
        let mut v = vendor(dec!(11.08), dec!(2), 31, dec!(6.00));
        v.currency = "EUR".into();
        let mut o = ours(dec!(2), dec!(5.50), (31, 31), dec!(10.00));
        o.currency = "EUR".into();
        let j = judge_charged(&PartnerCenter, &v, Some("x"), Some(&o), Tolerances::default());
        assert_eq!((j.category, j.amount), (Category::Underbilled, dec!(1.08)), "{}", j.rule);
        let mut other = o.clone();
        other.currency = "GBP".into();
        let j = judge_charged(&PartnerCenter, &v, Some("x"), Some(&other), Tolerances::default());
        assert_eq!(j.category, Category::PriceMismatch, "{}", j.rule);
    }

    #[test]
    fn the_vendor_truncates_where_we_round_and_still_matches() {
        // $4.00 a month, 29 of 30 days: the vendor's 3.866… truncates to 3.86 (we bill 3.87).
        let v = vendor(dec!(7.72), dec!(2), 29, dec!(4.00));
        let o = ours(dec!(2), dec!(4.00), (29, 30), dec!(9.00));
        let j = judge_charged(&PartnerCenter, &v, Some("by id"), Some(&o), Tolerances::default());
        assert_eq!((j.category, j.amount, j.expected), (Category::Matched, dec!(7.72), Some(dec!(7.72))), "{}", j.rule);
    }

    #[test]
    fn each_check_decides_in_its_turn() {
        let t = Tolerances::default();
        let o = ours(dec!(2), dec!(4.00), (31, 31), dec!(9.00));
        let j = |v: &VendorSide, o: Option<&OurSide>| judge_charged(&PartnerCenter, v, Some("by id"), o, t);
        assert_eq!(
            judge_charged(&PartnerCenter, &vendor(dec!(8), dec!(2), 31, dec!(4)), None, None, t).category,
            Category::UnknownSubscription
        );
        assert_eq!(j(&vendor(dec!(8), dec!(2), 31, dec!(4)), None).category, Category::Unbilled);
        assert_eq!(j(&vendor(dec!(-8), dec!(-2), 31, dec!(4)), None).category, Category::QuantityMismatch);
        let price = j(&vendor(dec!(9), dec!(2), 31, dec!(4.50)), Some(&o));
        assert_eq!((price.category, price.amount), (Category::PriceMismatch, dec!(1)));
        let quantity = j(&vendor(dec!(12), dec!(3), 31, dec!(4)), Some(&o));
        assert_eq!((quantity.category, quantity.amount), (Category::QuantityMismatch, dec!(4)));
        let amount = j(&vendor(dec!(8.01), dec!(2), 31, dec!(4)), Some(&o));
        assert_eq!((amount.category, amount.amount), (Category::PriceMismatch, dec!(0.01)));
        let under = judge_charged(
            &PartnerCenter,
            &vendor(dec!(8), dec!(2), 31, dec!(4)),
            Some("x"),
            Some(&ours(dec!(2), dec!(4), (31, 31), dec!(7.50))),
            t,
        );
        assert_eq!((under.category, under.amount), (Category::Underbilled, dec!(0.50)));
        let loose = Tolerances { amount: dec!(0.01), quantity: Decimal::ZERO };
        assert_eq!(
            judge_charged(&PartnerCenter, &vendor(dec!(8.01), dec!(2), 31, dec!(4)), Some("x"), Some(&o), loose)
                .category,
            Category::Matched
        );
    }

    #[test]
    fn a_cycle_charged_in_several_currencies_is_not_summed_into_a_verdict() {
        let mut v = vendor(dec!(8), dec!(2), 31, dec!(4));
        v.mixed_currencies = true;
        let o = ours(dec!(2), dec!(4), (31, 31), dec!(9.20));
        let j = judge_charged(&PartnerCenter, &v, Some("x"), Some(&o), Tolerances::default());
        assert_eq!(j.category, Category::PriceMismatch, "{}", j.rule);
    }

    #[test]
    fn cycles_only_we_charged_are_drift_or_overbilling() {
        let o = ours(dec!(2), dec!(4.00), (29, 30), dec!(9.00));
        let drift = judge_uncharged(&PartnerCenter, UnitKind::Seats, &o, true).map(|j| (j.category, j.amount));
        assert_eq!(drift, Some((Category::MissingVendorCharge, dec!(7.72))));
        let over = judge_uncharged(&PartnerCenter, UnitKind::Seats, &o, false).map(|j| (j.category, j.amount));
        assert_eq!(over, Some((Category::Overbilled, dec!(9.00))));
        let nothing = OurSide { currency: "USD".into(), ..OurSide::default() };
        assert!(judge_uncharged(&PartnerCenter, UnitKind::Seats, &nothing, false).is_none());
    }
}
