//! Custom scalars. `Decimal` travels as a string so no amount ever passes through a float.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use rust_decimal::Decimal;
use std::str::FromStr;

/// An exact decimal number, serialized as a string ("4.30"). JSON numbers are refused,
/// because JSON parsers read them as binary floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalScalar(pub Decimal);

#[Scalar(name = "Decimal")]
impl ScalarType for DecimalScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Decimal::from_str(text.trim())
                .map(DecimalScalar)
                .map_err(|_| InputValueError::custom(format!("{text:?} is not a decimal number"))),
            _ => Err(InputValueError::custom("decimals are sent as strings, e.g. \"4.30\"")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}
