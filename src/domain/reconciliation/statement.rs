//! A vendor's statement, whatever its format: the billing events it lists, read one row at a
//! time (memory stays bounded whatever the file's size) and checked before anything is
//! written. Each format is an adapter ([`StatementFormat`]) that knows its header and turns
//! a row into a [`StatementRow`]; the reader, the error report and the file's hash are
//! shared, so a new vendor's format is a new adapter beside the others, never a branch in
//! the matcher.

use std::io::Read;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

/// The most errors a rejected file reports one by one (the rest are counted).
pub const MAX_REPORTED_ERRORS: usize = 100;

/// What a vendor charged for, as the statement says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeType {
    /// A purchase.
    New,
    /// A cycle of a running subscription.
    CycleCharge,
    /// Seats added mid-cycle.
    AddQuantity,
    /// Seats removed mid-cycle (a credit).
    RemoveQuantity,
    /// A cancellation within the window (a credit).
    CancelImmediate,
    /// A renewal.
    Renew,
    /// Usage.
    Usage,
    /// Any other charge type the vendor names (kept as written).
    Other(String),
}

impl ChargeType {
    /// The charge type a statement names (case does not matter).
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "new" | "purchase" => Self::New,
            "cyclecharge" => Self::CycleCharge,
            "addquantity" => Self::AddQuantity,
            "removequantity" => Self::RemoveQuantity,
            "cancelimmediate" => Self::CancelImmediate,
            "renew" => Self::Renew,
            "usage" | "usagecharge" => Self::Usage,
            _ => Self::Other(text.trim().to_owned()),
        }
    }

    /// The name as stored.
    pub fn as_str(&self) -> &str {
        match self {
            Self::New => "new",
            Self::CycleCharge => "cycleCharge",
            Self::AddQuantity => "addQuantity",
            Self::RemoveQuantity => "removeQuantity",
            Self::CancelImmediate => "cancelImmediate",
            Self::Renew => "renew",
            Self::Usage => "usage",
            Self::Other(name) => name,
        }
    }
}

/// How the vendor computed a row's subtotal: per seat, or from a metered quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// Seats (licenses).
    Seats,
    /// Metered usage.
    Usage,
}

/// One billing event of a statement.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementRow {
    /// The row's number in the file (the header is row 1).
    pub row_number: u64,
    /// The customer's id at the vendor (its tenant id).
    pub customer_external_id: String,
    /// The customer's name at the vendor.
    pub customer_name: String,
    /// The reseller of record's id at the vendor, if any.
    pub reseller_external_id: Option<String>,
    /// The vendor's id of the subscription (our vendor reference).
    pub subscription_reference: String,
    /// The vendor's product, SKU and availability, as `product:sku:availability` (what our
    /// offers' SKUs are matched against).
    pub sku: String,
    /// What was charged for.
    pub charge_type: ChargeType,
    /// First day charged.
    pub charge_start: NaiveDate,
    /// Last day charged (inclusive).
    pub charge_end: NaiveDate,
    /// Seats or metered usage.
    pub unit_kind: UnitKind,
    /// The list unit price of the period, in the pricing currency.
    pub unit_price: Decimal,
    /// The prorated unit price the subtotal follows from, in the pricing currency.
    pub effective_unit_price: Decimal,
    /// The quantity charged.
    pub quantity: Decimal,
    /// From the pricing currency to the billing currency.
    pub exchange_rate: Decimal,
    /// The vendor's subtotal, in the billing currency.
    pub subtotal: Decimal,
    /// The billing currency (ISO 4217).
    pub currency: String,
    /// The pricing currency (ISO 4217).
    pub pricing_currency: String,
    /// Every column as the file has it, for audit (header → value).
    pub raw: serde_json::Map<String, serde_json::Value>,
}

pub use crate::domain::error::FileError as RowError;

/// A rejected file: the first [`MAX_REPORTED_ERRORS`] errors, and how many there were.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The errors reported, in file order.
    pub errors: Vec<RowError>,
    /// How many errors the file has in all.
    pub total: usize,
}

impl From<Rejected> for crate::domain::Error {
    fn from(rejected: Rejected) -> Self {
        Self::Rejected { errors: rejected.errors, total: rejected.total }
    }
}

/// A read statement's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The SHA-256 of the file's bytes (hex): the same file imported again is recognised.
    pub content_hash: String,
    /// Rows read (the header not counted).
    pub rows: u64,
}

/// A vendor statement format: its header, and how a row becomes a [`StatementRow`].
pub trait StatementFormat {
    /// Its name, as imports record it.
    fn name(&self) -> &'static str;

    /// Checks the header; the positions the rows are read with.
    fn columns(&self, header: &csv::StringRecord) -> Result<Columns, Vec<RowError>>;

    /// Reads the row numbered `row` (every error in it, not only the first).
    fn row(&self, columns: &Columns, record: &csv::StringRecord, row: u64) -> Result<StatementRow, Vec<RowError>>;

    /// What the vendor charges, by its own rule, for `quantity` at the prorated unit price
    /// `effective_unit_price` (pricing currency) converted at `rate`; None past the bounds
    /// of the arithmetic. Matching applies it to our cost prices.
    fn subtotal(
        &self,
        kind: UnitKind,
        effective_unit_price: Decimal,
        quantity: Decimal,
        rate: Decimal,
    ) -> Option<Decimal>;
}

/// The formats a statement can be imported in, by the name imports record.
pub fn format_named(name: &str) -> Option<&'static (dyn StatementFormat + Sync)> {
    match name {
        "PARTNER_CENTER" => Some(&super::partner_center::PartnerCenter),
        _ => None,
    }
}

/// The positions of a format's columns in a file's header.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    names: Vec<String>,
    positions: std::collections::HashMap<String, usize>,
}

impl Columns {
    /// Finds `required` in `header` (names compared without regard to case or blanks); every
    /// missing one, and every name with a control character, is an error of row 1.
    pub fn find(header: &csv::StringRecord, required: &[&str]) -> Result<Self, Vec<RowError>> {
        let names: Vec<String> = header.iter().map(|n| n.trim().trim_start_matches('\u{feff}').to_owned()).collect();
        let positions: std::collections::HashMap<String, usize> =
            names.iter().enumerate().map(|(i, n)| (n.to_ascii_lowercase(), i)).collect();
        // A name is a key of every row's raw values: no control character (PostgreSQL's JSON
        // refuses a NUL), named by its position since the name cannot be shown.
        let mut errors: Vec<RowError> = names
            .iter()
            .enumerate()
            .filter(|(_, name)| name.chars().any(char::is_control))
            .map(|(i, _)| RowError::at(1, &format!("column {}", i + 1), "a control character in the column's name"))
            .collect();
        errors.extend(
            required
                .iter()
                .filter(|name| !positions.contains_key(&name.to_ascii_lowercase()))
                .map(|name| RowError::at(1, name, "missing column")),
        );
        if errors.is_empty() { Ok(Self { names, positions }) } else { Err(errors) }
    }

    /// The value of `column` in `record` (trimmed; empty when the row is short).
    pub fn get<'r>(&self, record: &'r csv::StringRecord, column: &str) -> &'r str {
        self.positions.get(&column.to_ascii_lowercase()).and_then(|&i| record.get(i)).map_or("", str::trim)
    }

    /// The header name of the column at `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// Every column of `record`, by its header name, for audit.
    pub fn raw(&self, record: &csv::StringRecord) -> serde_json::Map<String, serde_json::Value> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), serde_json::Value::String(record.get(i).unwrap_or_default().to_owned())))
            .collect()
    }
}

/// Collects a file's errors, keeping the first [`MAX_REPORTED_ERRORS`].
#[derive(Default)]
struct Errors {
    kept: Vec<RowError>,
    total: usize,
}

impl Errors {
    fn add(&mut self, errors: Vec<RowError>) {
        self.total += errors.len();
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.kept.len());
        self.kept.extend(errors.into_iter().take(room));
    }
}

/// The most bytes one record may take (a stray quote would otherwise swallow the rest of
/// the file into one record, and memory with it).
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Hashes what is read through it, and refuses to read on while the record being read has
/// passed [`MAX_RECORD_BYTES`] (`record_start` is where it began).
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
    record_start: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.read.saturating_sub(self.record_start.get()) > MAX_RECORD_BYTES {
            return Err(std::io::Error::other(format!(
                "a row longer than {MAX_RECORD_BYTES} bytes (an unclosed quote?)"
            )));
        }
        let n = self.inner.read(buffer)?;
        self.hash.update(&buffer[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads a whole statement in `format` from `input`, one row at a time, handing each valid
/// row to `each` while the file has no error so far (so a caller that only validates passes
/// a no-op, and one that writes stops being called at the first error). The file is
/// rejected with every error (up to the cap) if any row, or the header, is wrong.
pub fn read_statement<R: Read>(
    format: &dyn StatementFormat,
    input: R,
    mut each: impl FnMut(StatementRow),
) -> Result<Summary, Rejected> {
    let record_start = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut hashing =
        Hashing { inner: input, hash: Sha256::new(), read: 0, record_start: std::rc::Rc::clone(&record_start) };
    let mut errors = Errors::default();
    let mut rows = 0u64;
    {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&mut hashing);
        let mut record = csv::StringRecord::new();
        let columns = match reader.read_record(&mut record) {
            Ok(true) => format.columns(&record),
            Ok(false) => Err(vec![RowError { row: 0, column: None, message: "the file is empty".into() }]),
            Err(error) => Err(vec![RowError { row: 1, column: None, message: format!("not CSV: {error}") }]),
        };
        let columns = match columns {
            Ok(columns) => columns,
            Err(found) => {
                errors.add(found);
                return Err(Rejected { errors: errors.kept, total: errors.total });
            }
        };
        loop {
            record_start.set(reader.position().byte());
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(error) => {
                    let row = 2 + rows;
                    errors.add(vec![RowError { row, column: None, message: format!("not CSV: {error}") }]);
                    break;
                }
            }
            if record.iter().all(|field| field.trim().is_empty()) {
                continue;
            }
            // Rows are numbered from 2 (the header is 1); blank lines are not rows.
            let row = 2 + rows;
            rows += 1;
            match format.row(&columns, &record, row) {
                Ok(parsed) if errors.total == 0 => each(parsed),
                Ok(_) => {}
                Err(found) => errors.add(found),
            }
        }
    }
    if errors.total > 0 {
        return Err(Rejected { errors: errors.kept, total: errors.total });
    }
    if rows == 0 {
        return Err(Rejected {
            errors: vec![RowError { row: 0, column: None, message: "the file has no rows".into() }],
            total: 1,
        });
    }
    Ok(Summary { content_hash: hex::encode(hashing.hash.finalize()), rows })
}

/// Parses a decimal as statements write it: `1234.5`, `-0.25`, `1,234.50` (commas only
/// where they group thousands: `36,00`, a decimal comma, is refused rather than read as
/// 3600), or with an exponent.
pub fn decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let whole = unsigned.split(['.', 'e', 'E']).next().unwrap_or(unsigned);
    if whole.contains(',') {
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or_default();
        let grouped = (1..=3).contains(&first.len()) && groups.all(|g| g.len() == 3);
        if !grouped || unsigned[whole.len()..].contains(',') {
            return None;
        }
    }
    let plain: String = text.chars().filter(|c| *c != ',').collect();
    if plain.is_empty() || plain.contains('_') {
        return None;
    }
    plain.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(&plain).ok())
}

/// Parses a date as statements write it: `2026-11-01`, with a time of day after `T` or a
/// blank (a zone or `AM`/`PM` allowed), or `11/1/2026` (month first, as Partner Center's US
/// exports). The year has four digits, from 2000 on; a time of day, when given, must be one.
pub fn date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let (day, time) = match text.find(['T', ' ']) {
        Some(at) => (&text[..at], Some(text[at + 1..].trim())),
        None => (text, None),
    };
    let parsed = if day.contains('-') {
        let year = day.split('-').next()?;
        if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?
    } else {
        let year = day.rsplit('/').next()?;
        if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        NaiveDate::parse_from_str(day, "%m/%d/%Y").ok()?
    };
    // A statement's dates are of this millennium; a year like 0026 is a mangled 26.
    if !(2000..=2999).contains(&chrono::Datelike::year(&parsed)) {
        return None;
    }
    if let Some(time) = time {
        let clock = time.trim_end_matches('Z').split(['+', ' ']).next().unwrap_or_default();
        let zone_or_meridiem = time[clock.len()..].trim_start_matches('Z').trim();
        let meridiem_ok = zone_or_meridiem.is_empty()
            || ["AM", "PM"].contains(&zone_or_meridiem)
            || zone_or_meridiem
                .trim_start_matches('+')
                .split(':')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        let parsed_clock = chrono::NaiveTime::parse_from_str(clock, "%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveTime::parse_from_str(clock, "%H:%M:%S"))
            .or_else(|_| chrono::NaiveTime::parse_from_str(clock, "%H:%M"));
        if parsed_clock.is_err() || !meridiem_ok {
            return None;
        }
    }
    Some(parsed)
}

/// Truncates `value` to two decimals toward zero: the vendor's ROUNDDOWN.
pub fn round_down_cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero)
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn numbers_take_thousands_separators_only_where_they_group_thousands() {
        for (text, value) in [
            ("1234.5", dec!(1234.5)),
            ("-0.25", dec!(-0.25)),
            ("1,234.50", dec!(1234.50)),
            ("12,345,678", dec!(12345678)),
            ("1e3", dec!(1000)),
        ] {
            assert_eq!(decimal(text), Some(value), "{text}");
        }
        // A decimal comma, misplaced separators, underscores: not numbers.
        for text in ["36,00", "1,23,456", ",123", "1_000", "", "1.2.3", "12,34.5"] {
            assert_eq!(decimal(text), None, "{text}");
        }
    }

    #[test]
    fn dates_need_a_full_year_and_a_real_time_of_day() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        for (text, expected) in [
            ("2026-11-01", day(2026, 11, 1)),
            ("2026-11-01T00:00:00", day(2026, 11, 1)),
            ("2026-11-01T13:45:00Z", day(2026, 11, 1)),
            ("2026-11-01 00:00:00", day(2026, 11, 1)),
            ("11/1/2026", day(2026, 11, 1)),
            ("11/01/2026 12:00:00 AM", day(2026, 11, 1)),
        ] {
            assert_eq!(date(text), expected, "{text}");
        }
        for text in [
            "11/1/26",
            "0026-11-01",
            "+12026-11-01",
            "2026-11-01Tnonsense",
            "2026-13-01",
            "1/32/2026",
            "2026-11-01T25:00:00",
        ] {
            assert_eq!(date(text), None, "{text}");
        }
    }
}
