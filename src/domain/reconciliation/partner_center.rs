//! Microsoft Partner Center's new-commerce invoice reconciliation file (CSV, one row per
//! billing event; DOMAIN.md, "Reconciliation"), as a [`StatementFormat`].
//!
//! A row must agree with itself under the vendor's own subtotal rule, to the cent:
//! - seats: `ROUNDDOWN(EffectiveUnitPrice × PCToBCExchangeRate, 2) × BillableQuantity`;
//! - usage: `ROUNDDOWN(ROUNDDOWN(EffectiveUnitPrice × BillableQuantity, 2) × PCToBCExchangeRate, 2)`.
//!
//! The vendor truncates where Switchyard rounds, so this is the vendor's rule, not ours. A row
//! is usage when its charge type is usage or its `UnitType` names no licence or seat.

use rust_decimal::Decimal;

use super::statement::{
    ChargeType, Columns, RowError, StatementFormat, StatementRow, UnitKind, date, decimal, round_down_cents,
};
use crate::domain::money::Currency;

/// The columns a row is read from (others are kept in `raw` only).
const REQUIRED: &[&str] = &[
    "CustomerId",
    "CustomerName",
    "ResellerMpnId",
    "ProductId",
    "SkuId",
    "AvailabilityId",
    "ChargeType",
    "UnitPrice",
    "Quantity",
    "Subtotal",
    "TaxTotal",
    "Total",
    "Currency",
    "SubscriptionId",
    "ChargeStartDate",
    "ChargeEndDate",
    "EffectiveUnitPrice",
    "UnitType",
    "BillableQuantity",
    "PricingCurrency",
    "PCToBCExchangeRate",
];

/// The Partner Center format.
pub struct PartnerCenter;

impl StatementFormat for PartnerCenter {
    fn name(&self) -> &'static str {
        "PARTNER_CENTER"
    }

    fn columns(&self, header: &csv::StringRecord) -> Result<Columns, Vec<RowError>> {
        Columns::find(header, REQUIRED)
    }

    fn subtotal(
        &self,
        kind: UnitKind,
        effective_unit_price: Decimal,
        quantity: Decimal,
        rate: Decimal,
    ) -> Option<Decimal> {
        vendor_subtotal(kind, effective_unit_price, quantity, rate)
    }

    fn row(&self, columns: &Columns, record: &csv::StringRecord, row: u64) -> Result<StatementRow, Vec<RowError>> {
        let mut errors = Vec::new();
        let text = |column: &str| columns.get(record, column).to_owned();
        let required = |column: &str, errors: &mut Vec<RowError>| {
            let value = text(column);
            if value.is_empty() {
                errors.push(RowError::at(row, column, "required"));
            }
            value
        };
        let customer_external_id = required("CustomerId", &mut errors);
        let subscription_reference = required("SubscriptionId", &mut errors);
        let product = required("ProductId", &mut errors);
        let sku_id = required("SkuId", &mut errors);
        let availability = text("AvailabilityId");
        let charge = required("ChargeType", &mut errors);
        let number = |column: &str, errors: &mut Vec<RowError>| match decimal(columns.get(record, column)) {
            // What a stored amount holds exactly: at most 10 decimals, below 10^17.
            Some(value)
                if value.normalize().scale() > 10 || value.abs() >= Decimal::from(100_000_000_000_000_000_i64) =>
            {
                errors.push(RowError::at(row, column, "more digits than an amount holds (10 decimals, 10^17)"));
                Decimal::ZERO
            }
            Some(value) => value,
            None => {
                errors.push(RowError::at(row, column, format!("not a number: {:?}", columns.get(record, column))));
                Decimal::ZERO
            }
        };
        let unit_price = number("UnitPrice", &mut errors);
        let effective_unit_price = number("EffectiveUnitPrice", &mut errors);
        let quantity = number("BillableQuantity", &mut errors);
        let exchange_rate = number("PCToBCExchangeRate", &mut errors);
        let subtotal = number("Subtotal", &mut errors);
        number("Quantity", &mut errors);
        let tax = number("TaxTotal", &mut errors);
        let total = number("Total", &mut errors);
        let day = |column: &str, errors: &mut Vec<RowError>| {
            date(columns.get(record, column)).unwrap_or_else(|| {
                errors.push(RowError::at(row, column, format!("not a date: {:?}", columns.get(record, column))));
                chrono::NaiveDate::default()
            })
        };
        let charge_start = day("ChargeStartDate", &mut errors);
        let charge_end = day("ChargeEndDate", &mut errors);
        let currency =
            |column: &str, errors: &mut Vec<RowError>| match Currency::parse(columns.get(record, column), column) {
                Ok(currency) => currency.code().to_owned(),
                Err(_) => {
                    errors.push(RowError::at(
                        row,
                        column,
                        format!("not a currency: {:?}", columns.get(record, column)),
                    ));
                    String::new()
                }
            };
        let billing_currency = currency("Currency", &mut errors);
        let pricing_currency = currency("PricingCurrency", &mut errors);
        if exchange_rate <= Decimal::ZERO && !errors.iter().any(|e| e.column.as_deref() == Some("PCToBCExchangeRate")) {
            errors.push(RowError::at(row, "PCToBCExchangeRate", "must be greater than 0"));
        }
        if charge_end < charge_start
            && errors.iter().all(|e| !e.column.as_deref().is_some_and(|c| c.starts_with("Charge")))
        {
            errors.push(RowError::at(row, "ChargeEndDate", "before ChargeStartDate"));
        }
        // No field may hold a control character (PostgreSQL refuses a NUL in text).
        for (index, field) in record.iter().enumerate() {
            if field.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                let column = columns.name(index).unwrap_or("?");
                errors.push(RowError::at(row, column, "a control character"));
            }
        }
        // What the stored line holds at most.
        for (column, value, most) in [
            ("CustomerId", &customer_external_id, 128),
            ("SubscriptionId", &subscription_reference, 128),
            ("ResellerMpnId", &text("ResellerMpnId"), 64),
            ("ChargeType", &charge, 32),
            ("ProductId", &product, 40),
            ("SkuId", &sku_id, 20),
            ("AvailabilityId", &availability, 38),
        ] {
            if value.chars().count() > most {
                errors.push(RowError::at(row, column, format!("at most {most} characters")));
            }
        }
        let charge_type = ChargeType::parse(&charge);
        let unit_type = text("UnitType").to_ascii_lowercase();
        let unit_kind = if charge_type == ChargeType::Usage
            || !(unit_type.is_empty() || unit_type.contains("licen") || unit_type.contains("seat"))
        {
            UnitKind::Usage
        } else {
            UnitKind::Seats
        };
        if errors.is_empty() && subtotal.checked_add(tax) != Some(total) {
            errors.push(RowError::at(row, "Total", format!("{total} is not Subtotal {subtotal} + TaxTotal {tax}")));
        }
        if errors.is_empty() {
            match vendor_subtotal(unit_kind, effective_unit_price, quantity, exchange_rate) {
                Some(expected) if expected == subtotal => {}
                Some(expected) => errors.push(RowError::at(
                    row,
                    "Subtotal",
                    format!("{subtotal} does not follow from its prices, quantity and rate: the vendor's rule gives {expected}"),
                )),
                None => errors.push(RowError::at(row, "Subtotal", "too large to compute")),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let reseller = text("ResellerMpnId");
        Ok(StatementRow {
            row_number: row,
            customer_external_id,
            customer_name: text("CustomerName"),
            reseller_external_id: (!reseller.is_empty()).then_some(reseller),
            subscription_reference,
            sku: format!("{product}:{sku_id}:{availability}"),
            charge_type,
            charge_start,
            charge_end,
            unit_kind,
            unit_price,
            effective_unit_price,
            quantity,
            exchange_rate,
            subtotal,
            currency: billing_currency,
            pricing_currency,
            raw: columns.raw(record),
        })
    }
}

/// The subtotal under Partner Center's rule (DOMAIN.md); `None` past what a decimal holds.
pub fn vendor_subtotal(
    kind: UnitKind,
    effective_unit_price: Decimal,
    quantity: Decimal,
    rate: Decimal,
) -> Option<Decimal> {
    match kind {
        UnitKind::Seats => round_down_cents(effective_unit_price.checked_mul(rate)?).checked_mul(quantity),
        UnitKind::Usage => {
            let priced = round_down_cents(effective_unit_price.checked_mul(quantity)?);
            Some(round_down_cents(priced.checked_mul(rate)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::domain::reconciliation::statement::{MAX_REPORTED_ERRORS, read_statement};

    const HEADER: &str = "PartnerId,CustomerId,CustomerName,CustomerDomainName,CustomerCountry,InvoiceNumber,MpnId,ResellerMpnId,\
        OrderId,OrderDate,ProductId,SkuId,AvailabilityId,SkuName,ProductName,ChargeType,UnitPrice,Quantity,Subtotal,TaxTotal,\
        Total,Currency,SubscriptionId,ChargeStartDate,ChargeEndDate,TermAndBillingCycle,EffectiveUnitPrice,UnitType,\
        BillableQuantity,BillingFrequency,PricingCurrency,PCToBCExchangeRate";

    /// A row with the given charge type, effective unit price, quantity, subtotal and rate.
    fn row(charge: &str, unit_type: &str, effective: &str, quantity: &str, subtotal: &str, rate: &str) -> String {
        format!(
            "p1,tenant-1,\"Contoso, Ltd\",contoso.test,DE,G001,1,5555,o1,2026-11-01,CFQ7TTC0LH18,0001,CFQ7TTC0K5DJ,E3,\"Microsoft 365 E3\",\
             {charge},36.00,{quantity},{subtotal},0,{subtotal},EUR,sub-1,11/1/2026,2026-11-30T00:00:00,1 Year - 1 Month,\
             {effective},{unit_type},{quantity},Monthly,USD,{rate}"
        )
    }

    fn read(text: &str) -> Result<(Vec<StatementRow>, String), crate::domain::reconciliation::statement::Rejected> {
        let mut rows = Vec::new();
        let summary = read_statement(&PartnerCenter, text.as_bytes(), |r| rows.push(r))?;
        assert_eq!(summary.rows as usize, rows.len());
        Ok((rows, summary.content_hash))
    }

    #[test]
    fn the_vendors_subtotal_rule_truncates_where_we_round() {
        // Seats: ROUNDDOWN(12.3456 × 0.9187, 2) = ROUNDDOWN(11.34190272) = 11.34; × 3 = 34.02.
        assert_eq!(vendor_subtotal(UnitKind::Seats, dec!(12.3456), dec!(3), dec!(0.9187)), Some(dec!(34.02)));
        // Usage: ROUNDDOWN(0.0519 × 133) = ROUNDDOWN(6.9027) = 6.90; × 0.9187 = 6.33903 → 6.33.
        assert_eq!(vendor_subtotal(UnitKind::Usage, dec!(0.0519), dec!(133), dec!(0.9187)), Some(dec!(6.33)));
        // A credit truncates toward zero too.
        assert_eq!(vendor_subtotal(UnitKind::Seats, dec!(-1.239), dec!(2), dec!(1)), Some(dec!(-2.46)));
        assert_eq!(vendor_subtotal(UnitKind::Seats, Decimal::MAX, dec!(2), dec!(2)), None);
    }

    #[test]
    fn a_partner_center_file_is_read_row_by_row_with_its_raw_values() {
        let file = format!(
            "\u{feff}{HEADER}\n{}\n{}\n\n",
            row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187"),
            row("usage", "1 Hour", "0.0519", "133", "6.33", "0.9187")
        );
        let (rows, hash) = read(&file).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rows.len(), 2);
        let first = &rows[0];
        assert_eq!(first.row_number, 2);
        assert_eq!(first.customer_external_id, "tenant-1");
        assert_eq!(first.customer_name, "Contoso, Ltd");
        assert_eq!(first.reseller_external_id.as_deref(), Some("5555"));
        assert_eq!(first.sku, "CFQ7TTC0LH18:0001:CFQ7TTC0K5DJ");
        assert_eq!(first.charge_type, ChargeType::CycleCharge);
        assert_eq!(first.unit_kind, UnitKind::Seats);
        assert_eq!(first.charge_start, chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default());
        assert_eq!(first.charge_end, chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default());
        assert_eq!(
            (first.subtotal, first.currency.as_str(), first.pricing_currency.as_str()),
            (dec!(34.02), "EUR", "USD")
        );
        assert_eq!(first.raw["SkuName"], "E3");
        assert_eq!(first.raw.len(), 32);
        assert_eq!(rows[1].unit_kind, UnitKind::Usage);
        assert_eq!(rows[1].row_number, 3);
        // The same bytes, the same hash; one byte more, another.
        assert_eq!(read(&file).map(|(_, h)| h).ok(), Some(hash.clone()));
        assert_ne!(read(&format!("{file} ")).map(|(_, h)| h).ok(), Some(hash));
    }

    #[test]
    fn a_wrong_file_is_rejected_with_every_error_by_row_and_column() {
        let file = format!(
            "{HEADER}\n{}\n{}\n{}\n{}\n",
            row("cycleCharge", "Licenses", "12.3456", "3", "34.03", "0.9187"),
            row("cycleCharge", "Licenses", "twelve", "3", "34.02", "0.9187"),
            row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187"),
            row("new", "Licenses", "12.3456", "3", "34.02", "0")
                .replace("11/1/2026", "2026-13-40")
                .replace(",EUR,", ",EURO,"),
        );
        let rejected = read(&file).err().unwrap_or_else(|| panic!("accepted"));
        let found: Vec<(u64, Option<&str>)> = rejected.errors.iter().map(|e| (e.row, e.column.as_deref())).collect();
        assert_eq!(
            found,
            [
                (2, Some("Subtotal")),
                (3, Some("EffectiveUnitPrice")),
                (5, Some("ChargeStartDate")),
                (5, Some("Currency")),
                (5, Some("PCToBCExchangeRate")),
            ],
            "{rejected:?}"
        );
        assert!(rejected.errors[0].message.contains("34.02"), "{rejected:?}");
        assert_eq!(rejected.total, 5);
    }

    #[test]
    fn a_wrong_header_an_empty_file_and_too_many_errors_are_reported() {
        let header = HEADER.replace("SubscriptionId,", "SubId,").replace(",PCToBCExchangeRate", "");
        let rejected = read(&format!("{header}\n")).err().unwrap_or_else(|| panic!("accepted"));
        let missing: Vec<_> = rejected.errors.iter().map(|e| (e.row, e.column.clone().unwrap_or_default())).collect();
        assert_eq!(missing, [(1, "SubscriptionId".to_owned()), (1, "PCToBCExchangeRate".to_owned())]);
        assert_eq!(read("").err().map(|r| r.errors[0].message.clone()).as_deref(), Some("the file is empty"));
        assert_eq!(
            read(&format!("{HEADER}\n")).err().map(|r| r.errors[0].message.clone()).as_deref(),
            Some("the file has no rows")
        );
        let bad = row("cycleCharge", "Licenses", "x", "3", "34.02", "0.9187");
        let many = format!("{HEADER}\n{}", vec![bad; 500].join("\n"));
        let rejected = read(&many).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!((rejected.errors.len(), rejected.total), (MAX_REPORTED_ERRORS, 500));
    }

    #[test]
    fn what_cannot_be_stored_is_a_row_error() {
        let nul = row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187").replace("Contoso", "Con\u{0}toso");
        let precise = row("cycleCharge", "Licenses", "12.34560000001", "3", "34.02", "0.9187");
        // A blank line is not a row.
        let file = format!("{HEADER}\n{nul}\n\n{precise}\n");
        let rejected = read(&file).err().unwrap_or_else(|| panic!("accepted"));
        let found: Vec<(u64, Option<&str>)> = rejected.errors.iter().map(|e| (e.row, e.column.as_deref())).collect();
        assert_eq!(found, [(2, Some("CustomerName")), (3, Some("EffectiveUnitPrice"))], "{rejected:?}");
        // A header name is stored as a key of every row's raw values: no control character
        // there either (PostgreSQL's JSON refuses a NUL).
        let header = HEADER.replacen("PartnerId", "Partner\u{0}Id", 1).replacen("TaxTotal", "Tax\tTotal", 1);
        let good = row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187");
        let rejected = read(&format!("{header}\n{good}\n")).err().unwrap_or_else(|| panic!("accepted"));
        let found: Vec<(u64, Option<&str>)> = rejected.errors.iter().map(|e| (e.row, e.column.as_deref())).collect();
        assert_eq!(found, [(1, Some("column 1")), (1, Some("column 20")), (1, Some("TaxTotal"))], "{rejected:?}");
        // Trailing zeros are no extra precision.
        let zeros = row("cycleCharge", "Licenses", "12.34560000000000", "3", "34.02", "0.9187");
        assert!(read(&format!("{HEADER}\n{zeros}\n")).is_ok());
    }

    #[test]
    fn a_total_that_is_not_subtotal_plus_tax_and_an_unreadable_quantity_are_refused() {
        let base = row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187");
        // Subtotal, TaxTotal, Total as the fixture writes them: 34.02,0,34.02.
        let total = base.replace("34.02,0,34.02", "34.02,6.46,34.02");
        let quantity = base.replace(",36.00,3,", ",36.00,three,");
        let rejected = read(&format!("{HEADER}\n{total}\n{quantity}\n")).err().unwrap_or_else(|| panic!("accepted"));
        let found: Vec<(u64, Option<&str>)> = rejected.errors.iter().map(|e| (e.row, e.column.as_deref())).collect();
        assert_eq!(found, [(2, Some("Total")), (3, Some("Quantity"))], "{rejected:?}");
        let fine = base.replace("34.02,0,34.02", "34.02,6.46,40.48");
        assert!(read(&format!("{HEADER}\n{fine}\n")).is_ok());
    }

    #[test]
    fn an_unclosed_quote_is_refused_before_it_takes_the_rest_of_the_file_into_memory() {
        let open =
            row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187").replace("\"Contoso, Ltd\"", "\"Contoso");
        let tail = "x,".repeat(1_000_000);
        let rejected = read(&format!("{HEADER}\n{open}\n{tail}\n")).err().unwrap_or_else(|| panic!("accepted"));
        let last = rejected.errors.last().map(|e| e.message.clone()).unwrap_or_default();
        assert!(last.contains("longer than"), "{rejected:?}");
    }

    #[test]
    fn rows_after_the_first_error_are_checked_but_not_handed_on() {
        let file = format!(
            "{HEADER}\n{}\n{}\n{}\n",
            row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187"),
            row("cycleCharge", "Licenses", "12.3456", "3", "1.00", "0.9187"),
            row("cycleCharge", "Licenses", "12.3456", "3", "34.02", "0.9187"),
        );
        let mut handed = 0;
        let rejected = read_statement(&PartnerCenter, file.as_bytes(), |_| handed += 1);
        assert_eq!(handed, 1);
        assert_eq!(rejected.err().map(|r| r.total), Some(1));
    }
}
