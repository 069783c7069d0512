//! An invoice or credit note from an issuer (operator or reseller) to a recipient.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::InvoiceKind;
use crate::enums::InvoiceStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: InvoiceKind,
    pub issuer_key: String,
    pub issuer_reseller_id: Option<i64>,
    pub recipient_key: String,
    pub recipient_reseller_id: Option<i64>,
    pub recipient_customer_id: Option<i64>,
    pub credited_invoice_id: Option<i64>,
    pub billing_run_id: Option<i64>,
    pub period: String,
    pub currency: String,
    pub status: InvoiceStatus,
    pub number: Option<String>,
    pub number_year: Option<i32>,
    pub tax_rate: DbDecimal,
    pub subtotal: DbDecimal,
    pub tax: DbDecimal,
    pub total: DbDecimal,
    pub issued_at: Option<DateTimeUtc>,
    pub paid_at: Option<DateTimeUtc>,
    pub voided_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When payment is due: set at issue from the issuer's payment terms.
    pub due_at: Option<DateTimeUtc>,
    /// The issuer and recipient as they were at issue (legal name, address, tax id).
    pub parties: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
