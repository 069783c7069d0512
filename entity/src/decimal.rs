//! [`DbDecimal`]: an exact decimal column on every backend.
//!
//! sea-orm reads a `Decimal` column on SQLite through `f64`, which loses digits
//! (99999999999999.9999 comes back as 100000000000000). This newtype keeps the domain type
//! `rust_decimal::Decimal` but stores it exactly: `NUMERIC` on PostgreSQL, decoded natively;
//! `TEXT` on SQLite, written as the decimal's canonical string and parsed back on read.
//! Writing needs no special case: sea-query already binds a `Decimal` as its string on SQLite.
//! Values read back are normalized (no trailing zeros), so both backends return the same.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};

/// An exact decimal stored without loss on PostgreSQL and SQLite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DbDecimal(pub Decimal);

impl From<Decimal> for DbDecimal {
    fn from(value: Decimal) -> Self {
        Self(value)
    }
}

impl From<DbDecimal> for Decimal {
    fn from(value: DbDecimal) -> Self {
        value.0
    }
}

impl From<DbDecimal> for Value {
    fn from(value: DbDecimal) -> Self {
        Value::Decimal(Some(value.0))
    }
}

impl TryGetable for DbDecimal {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        if res.try_as_sqlite_row().is_some() {
            let text = String::try_get_by(res, idx)?;
            Decimal::from_str(text.trim()).map(|value| DbDecimal(value.normalize())).map_err(|error| {
                TryGetError::DbErr(DbErr::TryIntoErr { from: "TEXT", into: "Decimal", source: Arc::new(error) })
            })
        } else {
            Decimal::try_get_by(res, idx).map(|value| DbDecimal(value.normalize()))
        }
    }
}

impl ValueType for DbDecimal {
    fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
        <Decimal as ValueType>::try_from(value).map(DbDecimal)
    }

    fn type_name() -> String {
        "DbDecimal".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::Decimal
    }

    fn column_type() -> ColumnType {
        ColumnType::Decimal(Some((28, 10)))
    }
}

impl Nullable for DbDecimal {
    fn null() -> Value {
        Value::Decimal(None)
    }
}

impl sea_orm::sea_query::postgres_array::NotU8 for DbDecimal {}

impl sea_orm::IntoActiveValue<DbDecimal> for DbDecimal {
    fn into_active_value(self) -> sea_orm::ActiveValue<DbDecimal> {
        sea_orm::ActiveValue::Set(self)
    }
}
