//! A reference model of how one vendor charge cycle is judged, written from DOMAIN.md
//! ("Reconciliation": the vendor's subtotal rule, to the cent) and the categories,
//! never by calling the code under test: thousands of generated cycles — seats bought, added
//! and removed on any day of the cycle, or usage; our cost and wholesale prices; the vendor's
//! exchange rate; tolerances — with one discrepancy planted or none. The model writes the
//! vendor's rows by its own rule, our charges and what we billed, decides the category and
//! amount itself, and `matching::judge_charged` must agree on every one.

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::matching::{Category, ChargeFacts, OurSide, Tolerances, VendorSide, judge_charged};
use super::partner_center::PartnerCenter;
use super::statement::UnitKind;

/// ROUNDDOWN(x, 2), as a spreadsheet does it: toward zero.
fn rounddown(x: Decimal) -> Decimal {
    (x * Decimal::ONE_HUNDRED).trunc() / Decimal::ONE_HUNDRED
}

/// Rounded to the cent, half away from zero (DOMAIN.md's rounding for us).
fn round(x: Decimal) -> Decimal {
    let cents = (x.abs() * Decimal::ONE_HUNDRED + Decimal::new(5, 1)).floor() / Decimal::ONE_HUNDRED;
    if x.is_sign_negative() { -cents } else { cents }
}

/// What can be wrong with a cycle.
#[derive(Clone, Copy, Debug)]
enum Plant {
    Nothing,
    /// The vendor charges a subscription we do not know.
    Unknown,
    /// Nobody was billed for the cycle.
    Unbilled,
    /// The vendor's unit price is this many cents above our cost.
    VendorPrice(i64),
    /// The vendor charges one more seat (unit) on its first row.
    ExtraUnit,
    /// The reseller was billed this many cents less (a discount, a price set below cost).
    BilledLess(i64),
}

#[derive(Clone, Debug)]
struct Cycle {
    usage: bool,
    cost: Decimal,
    wholesale: Decimal,
    days: u32,
    /// Signed seats and the day (0-based) they start on; the first is day 0. For usage, one
    /// entry: the units used.
    changes: Vec<(Decimal, u32)>,
    rate: Decimal,
    plant: Plant,
    tolerances: Tolerances,
}

fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        3 => Just(Plant::Nothing),
        1 => Just(Plant::Unknown),
        1 => Just(Plant::Unbilled),
        1 => (1_i64..500).prop_map(Plant::VendorPrice),
        1 => Just(Plant::ExtraUnit),
        1 => (1_i64..3000).prop_map(Plant::BilledLess),
    ]
}

fn cycle() -> impl Strategy<Value = Cycle> {
    (
        any::<bool>(),
        100_i64..200_000,
        -2000_i64..4000,
        prop_oneof![Just(28_u32), Just(29), Just(30), Just(31)],
        (1_i64..40, prop::collection::vec((-3_i64..6, 1_u32..31), 0..4), 1_i64..100_000),
        prop_oneof![Just(Decimal::ONE), (5000_i64..15000).prop_map(|r| Decimal::new(r, 4))],
        plant(),
        (prop_oneof![4 => Just(0_i64), 1 => Just(1), 1 => Just(100)], prop_oneof![3 => Just(0_i64), 1 => Just(1)]),
    )
        .prop_map(|(usage, cost, margin, days, (first, changes, units), rate, plant, (amount, quantity))| {
            let changes = if usage {
                vec![(Decimal::new(units, 2), 0)]
            } else {
                // Seats never fall below one.
                let mut seats = first;
                let mut kept = vec![(Decimal::from(first), 0)];
                for (change, day) in changes {
                    if change != 0 && seats + change >= 1 {
                        seats += change;
                        kept.push((Decimal::from(change), day.min(days - 1)));
                    }
                }
                kept
            };
            Cycle {
                usage,
                cost: Decimal::new(cost, 2),
                wholesale: Decimal::new((cost + margin).max(1), 2),
                days,
                changes,
                rate,
                plant,
                tolerances: Tolerances { amount: Decimal::new(amount, 2), quantity: Decimal::from(quantity) },
            }
        })
}

impl Cycle {
    fn kind(&self) -> UnitKind {
        if self.usage { UnitKind::Usage } else { UnitKind::Seats }
    }

    fn first_day(&self) -> NaiveDate {
        let (year, month) = match self.days {
            28 => (2027, 2),
            29 => (2028, 2),
            30 => (2026, 11),
            _ => (2026, 12),
        };
        NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default()
    }

    /// Days charged by a change starting on `day`: to the cycle's end.
    fn used(&self, day: u32) -> u32 {
        self.days - day
    }

    /// What the vendor's rule charges for `quantity` (signed) at the cycle `unit` price from
    /// `day`, in its billing currency.
    fn vendor_line(&self, unit: Decimal, quantity: Decimal, day: u32) -> Decimal {
        let line = if self.usage {
            rounddown(rounddown(unit * quantity.abs()) * self.rate)
        } else {
            let effective = unit * Decimal::from(self.used(day)) / Decimal::from(self.days);
            rounddown(effective * self.rate) * quantity.abs()
        };
        if quantity.is_sign_negative() { -line } else { line }
    }

    /// The vendor's rows of the cycle, summed as its statement holds them.
    fn vendor_side(&self) -> VendorSide {
        let unit = match self.plant {
            Plant::VendorPrice(cents) => self.cost + Decimal::new(cents, 2),
            _ => self.cost,
        };
        let (mut amount, mut quantity, mut seat_days) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for (index, &(q, day)) in self.changes.iter().enumerate() {
            let q = if index == 0 && matches!(self.plant, Plant::ExtraUnit) { q + Decimal::ONE } else { q };
            amount += self.vendor_line(unit, q, day);
            quantity += q;
            if !self.usage {
                seat_days += q * Decimal::from(self.used(day));
            }
        }
        let first_day = self.first_day();
        VendorSide {
            rows: u32::try_from(self.changes.len()).unwrap_or(u32::MAX),
            unit_kind: self.kind(),
            amount,
            quantity,
            seat_days,
            unit_prices: [unit].into(),
            currency: self.billing_currency().into(),
            pricing_currency: "USD".into(),
            rates: [self.rate].into(),
            mixed_currencies: false,
            first_day,
            last_day: first_day + chrono::Duration::days(i64::from(self.days) - 1),
        }
    }

    fn billing_currency(&self) -> &'static str {
        if self.rate == Decimal::ONE { "USD" } else { "EUR" }
    }

    /// What we billed the reseller for the cycle, in our (the pricing) currency: prorated
    /// per DOMAIN.md, round(unit / days in period × days used) × quantity.
    fn wholesale_billed(&self) -> Decimal {
        let billed: Decimal = self
            .changes
            .iter()
            .map(|&(q, day)| {
                if self.usage {
                    round(self.wholesale * q)
                } else {
                    round(self.wholesale / Decimal::from(self.days) * Decimal::from(self.used(day))) * q
                }
            })
            .sum();
        match self.plant {
            Plant::BilledLess(cents) => billed - Decimal::new(cents, 2),
            _ => billed,
        }
    }

    fn our_side(&self) -> OurSide {
        let charges = self
            .changes
            .iter()
            .map(|&(quantity, day)| ChargeFacts {
                quantity,
                cycle_unit_cost: self.cost,
                days: (!self.usage).then(|| (self.used(day), self.days)),
            })
            .collect();
        OurSide {
            charges,
            currency: "USD".into(),
            cost: Decimal::ZERO,
            wholesale: self.wholesale_billed(),
            retail: Decimal::ZERO,
            pending: Decimal::ZERO,
        }
    }

    /// The model's verdict: the category and its amount.
    fn verdict(&self) -> (Category, Decimal) {
        let vendor = self.vendor_side();
        let v = vendor.amount;
        match self.plant {
            Plant::Unknown => return (Category::UnknownSubscription, v),
            Plant::Unbilled if v > Decimal::ZERO => return (Category::Unbilled, v),
            Plant::Unbilled => return (Category::QuantityMismatch, v),
            _ => {}
        }
        // What the vendor should have charged: its rule on our cost and our quantities.
        let expected: Decimal = self.changes.iter().map(|&(q, day)| self.vendor_line(self.cost, q, day)).sum();
        if matches!(self.plant, Plant::VendorPrice(_)) {
            return (Category::PriceMismatch, v - expected);
        }
        let ours_quantity: Decimal = self.changes.iter().map(|c| c.0).sum();
        let ours_seat_days: Decimal = self.changes.iter().map(|&(q, day)| q * Decimal::from(self.used(day))).sum();
        let tolerance = self.tolerances;
        let days_differ =
            !self.usage && (vendor.seat_days - ours_seat_days).abs() > tolerance.quantity * Decimal::from(self.days);
        if (vendor.quantity - ours_quantity).abs() > tolerance.quantity || days_differ {
            return (Category::QuantityMismatch, v - expected);
        }
        if (v - expected).abs() > tolerance.amount {
            return (Category::PriceMismatch, v - expected);
        }
        let wholesale = self.wholesale_billed();
        let billed = if self.rate == Decimal::ONE { wholesale } else { round(wholesale * self.rate) };
        if billed < v - tolerance.amount {
            return (Category::Underbilled, v - billed);
        }
        (Category::Matched, v)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Every generated cycle is judged as the model judges it, to the cent.
    #[test]
    fn a_cycle_is_judged_as_the_reference_model_judges_it(cycle in cycle()) {
        let vendor = cycle.vendor_side();
        let ours = cycle.our_side();
        let subscription = (!matches!(cycle.plant, Plant::Unknown)).then_some("subscription 1");
        let ours = (!matches!(cycle.plant, Plant::Unbilled)).then_some(&ours);
        let judged = judge_charged(&PartnerCenter, &vendor, subscription, ours, cycle.tolerances);
        let (category, amount) = cycle.verdict();
        prop_assert_eq!(
            (judged.category, judged.amount.normalize()),
            (category, amount.normalize()),
            "rule: {}",
            judged.rule
        );
    }
}
