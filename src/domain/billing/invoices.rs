//! Reading invoices and credit notes, and who may see which: the operator all; a reseller
//! those it issues or receives; a customer those it receives, once issued (never drafts);
//! vendors none. Also an invoice's totals (subtotal, tax by the policy, total).

use crate::domain::Tenant;
use crate::domain::ids::{CustomerId, InvoiceId, ResellerId};
use entity::enums::InvoiceStatus;
use entity::{invoice, invoice_line};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Select};

use super::proration::{TaxPolicy, tax};
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result};
use crate::domain::money::Currency;
use crate::domain::pagination::{MAX_PAGE_SIZE, Page, PageRequest, fetch_page};

/// An invoice's subtotal, tax and total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Sum of the (rounded) lines.
    pub subtotal: Decimal,
    /// Tax per the policy.
    pub tax: Decimal,
    /// Subtotal + tax, exactly.
    pub total: Decimal,
}

/// Totals of rounded line amounts.
pub fn totals(lines: &[Decimal], rate: Decimal, currency: Currency, policy: TaxPolicy) -> Totals {
    let subtotal: Decimal = lines.iter().sum();
    let tax = tax(lines, rate, currency, policy);
    Totals { subtotal, tax, total: subtotal + tax }
}

/// The invoices `actor` may see.
fn scoped(actor: &Actor) -> Result<Select<invoice::Entity>> {
    Ok(match actor.tenant {
        Tenant::Operator => invoice::Entity::find(),
        Tenant::Reseller(reseller) => invoice::Entity::find().filter(
            sea_orm::Condition::any()
                .add(invoice::Column::IssuerResellerId.eq(reseller))
                .add(invoice::Column::RecipientResellerId.eq(reseller)),
        ),
        Tenant::Customer(customer) => invoice::Entity::find()
            .filter(invoice::Column::RecipientCustomerId.eq(customer))
            .filter(invoice::Column::Status.ne(InvoiceStatus::Draft)),
        Tenant::Vendor(_) => return Err(Error::Forbidden("vendors do not see invoices".into())),
    })
}

/// Filters for the invoice list.
#[derive(Clone, Debug, Default)]
pub struct InvoiceFilter {
    /// Only this status.
    pub status: Option<InvoiceStatus>,
    /// Only this period (`YYYY-MM`).
    pub period: Option<String>,
    /// Only invoices to this customer.
    pub customer_id: Option<CustomerId>,
    /// Only invoices from or to this reseller.
    pub reseller_id: Option<ResellerId>,
}

/// A page of the invoices the caller may see.
pub async fn list_invoices(
    domain: &Domain,
    actor: &Actor,
    filter: &InvoiceFilter,
    page: PageRequest,
) -> Result<Page<invoice::Model>> {
    let mut select = scoped(actor)?;
    if let Some(status) = filter.status {
        select = select.filter(invoice::Column::Status.eq(status));
    }
    if let Some(period) = &filter.period {
        select = select.filter(invoice::Column::Period.eq(period.clone()));
    }
    if let Some(id) = filter.customer_id {
        select = select.filter(invoice::Column::RecipientCustomerId.eq(id));
    }
    if let Some(id) = filter.reseller_id {
        select = select.filter(
            sea_orm::Condition::any()
                .add(invoice::Column::IssuerResellerId.eq(id))
                .add(invoice::Column::RecipientResellerId.eq(id)),
        );
    }
    fetch_page(&domain.db, select, invoice::Column::Id, page).await
}

/// An invoice the caller may see, with its lines, for printing or export (an API key needs
/// billing:read).
pub async fn invoice_with_lines(
    domain: &Domain,
    actor: &Actor,
    id: InvoiceId,
) -> Result<(invoice::Model, Vec<invoice_line::Model>)> {
    actor.require_scope(crate::domain::scopes::Scope::BillingRead, "reading invoices")?;
    let invoice = get_invoice(&domain.db, actor, id).await?;
    let lines = lines_of(domain, &[invoice.id]).await?;
    Ok((invoice, lines))
}

/// An invoice the caller may see, else NotFound.
pub async fn get_invoice<C: ConnectionTrait>(db: &C, actor: &Actor, id: InvoiceId) -> Result<invoice::Model> {
    scoped(actor)
        .map_err(|_| Error::NotFound("invoice"))?
        .filter(invoice::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("invoice"))
}

/// The lines of invoices the caller already may see.
pub async fn lines_of(domain: &Domain, invoice_ids: &[i64]) -> Result<Vec<invoice_line::Model>> {
    Ok(invoice_line::Entity::find()
        .filter(invoice_line::Column::InvoiceId.is_in(invoice_ids.iter().copied()))
        .order_by_asc(invoice_line::Column::InvoiceId)
        .order_by_asc(invoice_line::Column::LineNumber)
        .all(&domain.db)
        .await?)
}

/// Every invoice of `period` (`YYYY-MM`) the caller may see, in id order, each with its
/// lines (the period export). Read a page at a time, so no one statement carries a period.
pub async fn invoices_of_period_with_lines(
    domain: &Domain,
    actor: &Actor,
    period: &str,
) -> Result<Vec<(invoice::Model, Vec<invoice_line::Model>)>> {
    actor.require_scope(crate::domain::scopes::Scope::BillingRead, "reading invoices")?;
    let period = super::plan::Period::parse(period)?.label();
    let filter = InvoiceFilter { period: Some(period), ..InvoiceFilter::default() };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page =
            list_invoices(domain, actor, &filter, PageRequest { first: MAX_PAGE_SIZE, after, newest_first: false })
                .await?;
        let ids: Vec<i64> = page.items.iter().map(|i| i.id).collect();
        let mut lines = lines_of(domain, &ids).await?.into_iter().peekable();
        for invoice in page.items {
            let mut own = Vec::new();
            while let Some(line) = lines.next_if(|line| line.invoice_id == invoice.id) {
                own.push(line);
            }
            out.push((invoice, own));
        }
        if !page.has_next_page {
            return Ok(out);
        }
        after = ids.last().copied();
    }
}

/// A party as an invoice names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Party {
    /// Legal name (the display name when none is recorded).
    pub legal_name: String,
    /// Postal address, possibly several lines.
    pub address: String,
    /// Tax id, if recorded.
    pub tax_id: String,
    /// ISO country, for customers.
    pub country: String,
}

/// Who issued `invoice` and who receives it — as they were when it was issued, for an
/// issued invoice — and the number of the invoice a credit note credits (the caller could
/// read `invoice`, so it may read these).
pub async fn parties_of(domain: &Domain, invoice: &invoice::Model) -> Result<(Party, Party, Option<String>)> {
    let credited = match invoice.credited_invoice_id {
        Some(id) => invoice::Entity::find_by_id(id).one(&domain.db).await?.and_then(|i| i.number),
        None => None,
    };
    if let Some(snapshot) = &invoice.parties
        && let Ok((issuer, recipient)) = serde_json::from_value::<(Party, Party)>(snapshot.clone())
    {
        return Ok((issuer, recipient, credited));
    }
    let (issuer, recipient) = current_parties(&domain.db, domain, invoice).await?;
    Ok((issuer, recipient, credited))
}

/// The legal names of each invoice's issuer and recipient (frozen at issue, else as their
/// records are now), for exports: a few statements for the lot, not one per invoice.
pub async fn party_names(
    domain: &Domain,
    invoices: &[&invoice::Model],
) -> Result<std::collections::HashMap<i64, (String, String)>> {
    use std::collections::{BTreeSet, HashMap};
    let mut names = HashMap::new();
    let mut resellers = BTreeSet::new();
    let mut customers = BTreeSet::new();
    for invoice in invoices {
        if let Some(Ok((issuer, recipient))) =
            invoice.parties.as_ref().map(|p| serde_json::from_value::<(Party, Party)>(p.clone()))
        {
            names.insert(invoice.id, (issuer.legal_name, recipient.legal_name));
            continue;
        }
        resellers.extend(invoice.issuer_reseller_id);
        resellers.extend(invoice.recipient_reseller_id);
        customers.extend(invoice.recipient_customer_id);
    }
    let resellers: Vec<i64> = resellers.into_iter().collect();
    let customers: Vec<i64> = customers.into_iter().collect();
    let mut reseller_names = HashMap::new();
    for ids in resellers.chunks(500) {
        for r in entity::reseller::Entity::find()
            .filter(entity::reseller::Column::Id.is_in(ids.iter().copied()))
            .all(&domain.db)
            .await?
        {
            reseller_names.insert(r.id, r.legal_name.unwrap_or(r.name));
        }
    }
    let mut customer_names = HashMap::new();
    for ids in customers.chunks(500) {
        for c in entity::customer::Entity::find()
            .filter(entity::customer::Column::Id.is_in(ids.iter().copied()))
            .all(&domain.db)
            .await?
        {
            customer_names.insert(c.id, c.legal_name.unwrap_or(c.name));
        }
    }
    let pending: Vec<&&invoice::Model> = invoices.iter().filter(|i| !names.contains_key(&i.id)).collect();
    for invoice in pending {
        let issuer = match invoice.issuer_reseller_id {
            Some(id) => reseller_names.get(&id).cloned().unwrap_or_default(),
            None => domain.operator.legal_name.clone(),
        };
        let recipient = match (invoice.recipient_customer_id, invoice.recipient_reseller_id) {
            (Some(id), _) => customer_names.get(&id).cloned().unwrap_or_default(),
            (None, Some(id)) => reseller_names.get(&id).cloned().unwrap_or_default(),
            (None, None) => String::new(),
        };
        names.insert(invoice.id, (issuer, recipient));
    }
    Ok(names)
}

/// The parties of `invoice` as their records are now (frozen onto the invoice at issue).
pub async fn current_parties<C: ConnectionTrait>(
    db: &C,
    domain: &Domain,
    invoice: &invoice::Model,
) -> Result<(Party, Party)> {
    let reseller = |id: i64| async move {
        let r = entity::reseller::Entity::find_by_id(id).one(db).await?.ok_or(Error::NotFound("reseller"))?;
        Ok::<Party, Error>(Party {
            legal_name: r.legal_name.unwrap_or(r.name),
            address: r.address.unwrap_or_default(),
            tax_id: r.tax_id.unwrap_or_default(),
            country: String::new(),
        })
    };
    let issuer = match invoice.issuer_reseller_id {
        Some(id) => reseller(id).await?,
        None => Party {
            legal_name: domain.operator.legal_name.clone(),
            address: domain.operator.address.clone(),
            tax_id: domain.operator.tax_id.clone(),
            country: String::new(),
        },
    };
    let recipient = match (invoice.recipient_customer_id, invoice.recipient_reseller_id) {
        (Some(id), _) => {
            let c = entity::customer::Entity::find_by_id(id).one(db).await?.ok_or(Error::NotFound("customer"))?;
            Party {
                legal_name: c.legal_name.unwrap_or(c.name),
                address: c.address.unwrap_or_default(),
                tax_id: c.tax_id.unwrap_or_default(),
                country: c.country,
            }
        }
        (None, Some(id)) => reseller(id).await?,
        (None, None) => Party::default(),
    };
    Ok((issuer, recipient))
}

/// Credit notes against an invoice.
pub async fn credit_notes_of(domain: &Domain, actor: &Actor, invoice_id: i64) -> Result<Vec<invoice::Model>> {
    // Scoped like every invoice read: a customer sees no DRAFT credit note.
    Ok(scoped(actor)?.filter(invoice::Column::CreditedInvoiceId.eq(invoice_id)).all(&domain.db).await?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Subtotal is the sum of the lines and subtotal + tax is the total, exactly, under
        /// both tax policies.
        #[test]
        fn totals_add_up(lines in proptest::collection::vec(-100_000_i64..1_000_000, 0..30), rate in 0_i64..=27) {
            let usd = Currency::parse("USD", "c").unwrap_or_else(|_| unreachable!());
            let lines: Vec<Decimal> = lines.into_iter().map(|c| Decimal::new(c, 2)).collect();
            for policy in [TaxPolicy::PerInvoice, TaxPolicy::PerLine] {
                let t = totals(&lines, Decimal::new(rate, 2), usd, policy);
                prop_assert_eq!(t.subtotal, lines.iter().sum::<Decimal>());
                prop_assert_eq!(t.subtotal + t.tax, t.total);
                prop_assert!(t.tax.scale() <= 2);
            }
        }
    }
}
