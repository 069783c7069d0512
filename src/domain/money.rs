//! Money: exact amounts in one currency, and the one place where rounding happens.
//!
//! Amounts are `rust_decimal::Decimal`, never floats. Arithmetic keeps full precision;
//! [`round_to_minor_units`] rounds half away from zero to the currency's minor units, and is
//! called only at the points DOMAIN.md names (prorated unit prices, line amounts, tax).

use std::fmt;
use std::ops::{Add, Sub};

use rust_decimal::{Decimal, RoundingStrategy};

use super::error::{Error, Result};

/// An ISO 4217 currency code this system can bill in, with its minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    minor_units: u32,
}

/// ISO 4217 codes accepted, with their minor units.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("ILS", 2),
    ("INR", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PLN", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("TRY", 2),
    ("USD", 2),
    ("ZAR", 2),
];

impl Currency {
    /// Parses an upper-case ISO 4217 code; `field` names the input for the error.
    pub fn parse(code: &str, field: &str) -> Result<Self> {
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == code)
            .and_then(|(known, minor_units)| {
                let bytes = known.as_bytes();
                Some(Self { code: [*bytes.first()?, *bytes.get(1)?, *bytes.get(2)?], minor_units: *minor_units })
            })
            .ok_or_else(|| Error::validation(field, format!("unknown currency code {code:?}")))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Digits after the decimal point in this currency (2 for USD, 0 for JPY).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Rounds `amount` to `currency`'s minor units, half away from zero (3.685 → 3.69).
pub fn round_to_minor_units(amount: Decimal, currency: Currency) -> Decimal {
    amount.round_dp_with_strategy(currency.minor_units(), RoundingStrategy::MidpointAwayFromZero)
}

/// `amount` as text with at least `code`'s minor units ("43.20", "1500" for JPY); never
/// rounded (an amount finer than the minor units keeps its digits).
pub fn format_minor_units(amount: Decimal, code: &str) -> String {
    let mut amount = amount.normalize();
    let units = Currency::parse(code, "currency").map_or(2, |c| c.minor_units());
    if amount.scale() < units {
        amount.rescale(units);
    }
    amount.to_string()
}

/// An exact amount in one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    /// The amount, at full precision.
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
}

impl Money {
    /// An amount in a currency.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    /// Adds two amounts; refuses to mix currencies.
    pub fn checked_add(self, other: Money) -> Result<Money> {
        self.same_currency(other)?;
        Ok(Money::new(self.amount + other.amount, self.currency))
    }

    /// Subtracts two amounts; refuses to mix currencies.
    pub fn checked_sub(self, other: Money) -> Result<Money> {
        self.same_currency(other)?;
        Ok(Money::new(self.amount - other.amount, self.currency))
    }

    /// This amount times a factor (a quantity or a rate), at full precision.
    pub fn times(self, factor: Decimal) -> Money {
        Money::new(self.amount * factor, self.currency)
    }

    /// This amount rounded to the currency's minor units, half away from zero.
    pub fn rounded(self) -> Money {
        Money::new(round_to_minor_units(self.amount, self.currency), self.currency)
    }

    fn same_currency(self, other: Money) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::InvalidTransition(format!("cannot combine {} and {} amounts", self.currency, other.currency)))
        }
    }
}

impl Add for Money {
    type Output = Result<Money>;
    fn add(self, other: Money) -> Result<Money> {
        self.checked_add(other)
    }
}

impl Sub for Money {
    type Output = Result<Money>;
    fn sub(self, other: Money) -> Result<Money> {
        self.checked_sub(other)
    }
}

/// Most decimal places accepted in a unit price (usage prices need more than cents).
pub const PRICE_MAX_SCALE: u32 = 6;
/// Most decimal places accepted in a rate (markup, tax rate): 0.1525 = 15.25 %.
pub const RATE_MAX_SCALE: u32 = 6;

/// A validated non-negative unit price with at most [`PRICE_MAX_SCALE`] decimals.
pub fn parse_price(value: Decimal, field: &str) -> Result<Decimal> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(Error::validation(field, "must not be negative"));
    }
    if value.normalize().scale() > PRICE_MAX_SCALE {
        return Err(Error::validation(field, format!("at most {PRICE_MAX_SCALE} decimal places")));
    }
    if value > max_unit_price() {
        return Err(Error::validation(field, format!("at most {}", max_unit_price())));
    }
    Ok(value.normalize())
}

/// A validated rate between 0 and `max`, with at most [`RATE_MAX_SCALE`] decimals.
pub fn parse_rate(value: Decimal, max: Decimal, field: &str) -> Result<Decimal> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(Error::validation(field, "must not be negative"));
    }
    if value > max {
        return Err(Error::validation(field, format!("must be at most {max}")));
    }
    if value.normalize().scale() > RATE_MAX_SCALE {
        return Err(Error::validation(field, format!("at most {RATE_MAX_SCALE} decimal places")));
    }
    Ok(value.normalize())
}

/// The largest amount the `NUMERIC(28,10)` columns hold: 18 integer digits.
pub fn max_storable() -> Decimal {
    Decimal::new(999_999_999_999_999_999, 0)
}

/// The largest unit price accepted (cost, list, explicit wholesale or retail, usage): one
/// billion. With markups of at most 10 (1,000 %) a unit sells for at most 121 × that, and
/// a line of [`MAX_QUANTITY`] units for at most 1.21 × 10^17, below [`max_storable`]; sums
/// of lines (order and invoice totals) are checked against it.
pub fn max_unit_price() -> Decimal {
    Decimal::from(1_000_000_000_u64)
}

/// The largest quantity of an offer, an order line or a subscription: one million.
pub const MAX_QUANTITY: i32 = 1_000_000;

/// The sum of `amounts`, if no partial sum passes [`max_storable`] either way.
pub fn checked_total(amounts: impl IntoIterator<Item = Decimal>) -> Option<Decimal> {
    amounts
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, amount| sum.checked_add(amount).filter(|total| total.abs() <= max_storable()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD", "currency").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn rounds_half_away_from_zero_to_minor_units() {
        let jpy = Currency::parse("JPY", "c").unwrap_or_else(|_| unreachable!());
        let kwd = Currency::parse("KWD", "c").unwrap_or_else(|_| unreachable!());
        assert_eq!(round_to_minor_units(dec!(3.685), usd()), dec!(3.69));
        assert_eq!(round_to_minor_units(dec!(-3.685), usd()), dec!(-3.69));
        assert_eq!(round_to_minor_units(dec!(0.067) * dec!(55), usd()), dec!(3.69));
        assert_eq!(round_to_minor_units(dec!(3.684999), usd()), dec!(3.68));
        assert_eq!(round_to_minor_units(dec!(100.5), jpy), dec!(101));
        assert_eq!(round_to_minor_units(dec!(1.2345), kwd), dec!(1.235));
    }

    #[test]
    fn money_refuses_to_mix_currencies() {
        let eur = Currency::parse("EUR", "c").unwrap_or_else(|_| unreachable!());
        assert!(Money::new(dec!(1), usd()).checked_add(Money::new(dec!(1), eur)).is_err());
        assert_eq!(
            (Money::new(dec!(1.10), usd()) + Money::new(dec!(2.205), usd())).ok(),
            Some(Money::new(dec!(3.305), usd()))
        );
    }

    #[test]
    fn currency_codes_are_checked() {
        assert!(Currency::parse("XYZ", "input.currency").is_err());
        assert!(Currency::parse("usd", "input.currency").is_err());
        assert_eq!(usd().code(), "USD");
        assert_eq!(usd().minor_units(), 2);
    }

    #[test]
    fn prices_and_rates_are_parsed_strictly() {
        assert_eq!(parse_price(dec!(4.300), "p").ok(), Some(dec!(4.3)));
        assert!(parse_price(dec!(-0.01), "p").is_err());
        assert!(parse_price(dec!(0.0000001), "p").is_err());
        assert!(parse_price(dec!(1000000000000000000), "p").is_err());
        assert!(parse_rate(dec!(0.23), Decimal::ONE, "r").is_ok());
        assert!(parse_rate(dec!(1.5), Decimal::ONE, "r").is_err());
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        (-1_000_000_000_000_i64..1_000_000_000_000, 0_u32..=6).prop_map(|(n, scale)| Decimal::new(n, scale))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn addition_is_exact(a in amount(), b in amount()) {
            let sum = Money::new(a, usd()).checked_add(Money::new(b, usd())).unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(sum.checked_sub(Money::new(b, usd())).map(|m| m.amount).ok(), Some(a));
        }

        #[test]
        fn rounding_is_idempotent_and_within_half_a_cent(a in amount()) {
            let rounded = round_to_minor_units(a, usd());
            prop_assert_eq!(round_to_minor_units(rounded, usd()), rounded);
            prop_assert!((rounded - a).abs() <= dec!(0.005));
            prop_assert!(rounded.scale() <= 2);
        }

        #[test]
        fn rounding_is_symmetric_around_zero(a in amount()) {
            prop_assert_eq!(round_to_minor_units(-a, usd()), -round_to_minor_units(a, usd()));
        }
    }
}
