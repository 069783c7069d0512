//! Proration, rounding and tax: the money rules of DOMAIN.md, as pure functions.
//!
//! - prorated unit price = round(unit price per period / days in period × days used), then
//!   × quantity (`RoundPerUnitThenMultiply`, the default: $4/month, 30 days, 29 used →
//!   3.87; 2 seats → 7.74); or round once per line (`RoundPerLine`: 2 seats → 7.73);
//! - rounding is half away from zero at the currency's minor units, nowhere else;
//! - tax on the rounded invoice subtotal (`PerInvoice`, the default: 23 % on 55.55 and
//!   11.11 → 15.33) or per line (`PerLine`: 12.78 + 2.56 → 15.34).

use rust_decimal::Decimal;

use crate::domain::money::{Currency, round_to_minor_units};

/// Where proration rounds (a distributor's policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProrationRounding {
    /// Round the prorated unit price, then multiply by the quantity (Partner Center).
    #[default]
    RoundPerUnitThenMultiply,
    /// Round once, the whole line.
    RoundPerLine,
}

/// How tax is computed (a distributor's policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaxPolicy {
    /// On the invoice's rounded subtotal.
    #[default]
    PerInvoice,
    /// On each line, rounded, then summed.
    PerLine,
}

/// One prorated amount and its inputs, for a person to check by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prorated {
    /// The unit price for the days used (rounded under `RoundPerUnitThenMultiply`).
    pub unit_price: Decimal,
    /// The line amount, rounded to minor units.
    pub amount: Decimal,
}

/// Prorates `unit_price` (per whole period) for `days_used` of `days_in_period`, times
/// `quantity` (negative for refunds).
pub fn prorate(
    unit_price: Decimal,
    quantity: Decimal,
    days_used: u32,
    days_in_period: u32,
    currency: Currency,
    rounding: ProrationRounding,
) -> Prorated {
    // Multiply before dividing: a whole period then divides out exactly (3.685 stays 3.685).
    let days_in_period = Decimal::from(days_in_period.max(1));
    let share = Decimal::from(days_used);
    match rounding {
        ProrationRounding::RoundPerUnitThenMultiply => {
            let unit = round_to_minor_units(unit_price * share / days_in_period, currency);
            // The quantity is whole for seats; usage quantities may not be, so round again.
            Prorated { unit_price: unit, amount: round_to_minor_units(unit * quantity, currency) }
        }
        ProrationRounding::RoundPerLine => Prorated {
            unit_price: (unit_price * share / days_in_period).round_dp(9),
            amount: round_to_minor_units(unit_price * quantity * share / days_in_period, currency),
        },
    }
}

/// The tax on lines that are already rounded.
pub fn tax(lines: &[Decimal], rate: Decimal, currency: Currency, policy: TaxPolicy) -> Decimal {
    match policy {
        TaxPolicy::PerInvoice => round_to_minor_units(lines.iter().sum::<Decimal>() * rate, currency),
        TaxPolicy::PerLine => lines.iter().map(|line| round_to_minor_units(*line * rate, currency)).sum(),
    }
}

/// A customer price from cost with a partner-earned credit: cost / ((100 − PEC%) / 100).
pub fn price_with_partner_earned_credit(cost: Decimal, pec_percent: Decimal) -> Option<Decimal> {
    let share = (Decimal::ONE_HUNDRED - pec_percent) / Decimal::ONE_HUNDRED;
    (share > Decimal::ZERO).then(|| cost / share)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD", "c").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn partner_center_proration_vector() {
        let one = prorate(dec!(4), dec!(1), 29, 30, usd(), ProrationRounding::RoundPerUnitThenMultiply);
        assert_eq!(one, Prorated { unit_price: dec!(3.87), amount: dec!(3.87) });
        let two = prorate(dec!(4), dec!(2), 29, 30, usd(), ProrationRounding::RoundPerUnitThenMultiply);
        assert_eq!(two.amount, dec!(7.74));
        let per_line = prorate(dec!(4), dec!(2), 29, 30, usd(), ProrationRounding::RoundPerLine);
        assert_eq!(per_line.amount, dec!(7.73));
    }

    #[test]
    fn usage_rounds_half_away_from_zero() {
        let usage = prorate(dec!(0.067), dec!(55), 30, 30, usd(), ProrationRounding::RoundPerLine);
        assert_eq!(usage.amount, dec!(3.69));
        assert_eq!(round_to_minor_units(dec!(0.067) * dec!(55), usd()), dec!(3.69));
    }

    #[test]
    fn tax_per_invoice_and_per_line() {
        let lines = [dec!(55.55), dec!(11.11)];
        assert_eq!(tax(&lines, dec!(0.23), usd(), TaxPolicy::PerInvoice), dec!(15.33));
        assert_eq!(tax(&lines, dec!(0.23), usd(), TaxPolicy::PerLine), dec!(15.34));
    }

    #[test]
    fn partner_earned_credit_price() {
        assert_eq!(price_with_partner_earned_credit(dec!(85.00), dec!(15)).map(|p| p.round_dp(2)), Some(dec!(100.00)));
        assert_eq!(price_with_partner_earned_credit(dec!(85.00), dec!(100)), None);
    }

    #[test]
    fn leap_year_february_has_29_days() {
        // A $29 monthly seat for the last 10 days of February 2028 (29 days).
        let prorated = prorate(dec!(29), dec!(1), 10, 29, usd(), ProrationRounding::RoundPerUnitThenMultiply);
        assert_eq!(prorated.amount, dec!(10.00));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Prorating each day separately and summing never differs from prorating the days
        /// at once by more than one minor unit per piece, under per-line rounding.
        #[test]
        fn split_proration_stays_within_one_minor_unit_per_piece(
            cents in 1_i64..100_000, quantity in 1_i64..500, days in 28_u32..=31, split in 0_u32..=31,
        ) {
            let split = split.min(days);
            let unit = Decimal::new(cents, 2);
            let q = Decimal::from(quantity);
            let whole = prorate(unit, q, days, days, usd(), ProrationRounding::RoundPerLine).amount;
            let first = prorate(unit, q, split, days, usd(), ProrationRounding::RoundPerLine).amount;
            let second = prorate(unit, q, days - split, days, usd(), ProrationRounding::RoundPerLine).amount;
            prop_assert!((first + second - whole).abs() <= dec!(0.01));
        }

        /// Per-unit rounding errs by at most half a minor unit per seat, and never pays
        /// out more than the full period.
        #[test]
        fn per_unit_rounding_is_bounded_by_the_quantity(
            cents in 1_i64..100_000, quantity in 1_i64..500, days in 28_u32..=31, used in 0_u32..=31,
        ) {
            let used = used.min(days);
            let unit = Decimal::new(cents, 2);
            let q = Decimal::from(quantity);
            let exact = unit * q * Decimal::from(used) / Decimal::from(days);
            let prorated = prorate(unit, q, used, days, usd(), ProrationRounding::RoundPerUnitThenMultiply);
            prop_assert!((prorated.amount - exact).abs() <= dec!(0.005) * q);
            prop_assert!(prorated.amount <= unit * q);
            prop_assert_eq!(prorated.amount, prorated.unit_price * q);
        }

        /// Tax policies differ by at most half a minor unit per line.
        #[test]
        fn tax_policies_agree_within_rounding(lines in proptest::collection::vec(0_i64..1_000_000, 1..20), rate in 0_i64..30) {
            let lines: Vec<Decimal> = lines.into_iter().map(|c| Decimal::new(c, 2)).collect();
            let rate = Decimal::new(rate, 2);
            let a = tax(&lines, rate, usd(), TaxPolicy::PerInvoice);
            let b = tax(&lines, rate, usd(), TaxPolicy::PerLine);
            prop_assert!((a - b).abs() <= dec!(0.005) * Decimal::from(lines.len() as u64) + dec!(0.005));
        }
    }
}
