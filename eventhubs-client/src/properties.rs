//! Typed values of an event's application properties and system properties, and message ids:
//! what the official SDKs let an application put on an event and read back, in every AMQP
//! type, not only strings.

use std::fmt;

use fe2o3_amqp::types::messaging::MessageId as AmqpMessageId;
use fe2o3_amqp::types::primitives::{Binary, SimpleValue, Symbol, Timestamp, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result};

/// One property value, in the AMQP type it travels as.
///
/// Application properties carry simple values only (AMQP 1.0 §3.2.5); system properties (the
/// service's message annotations, and the AMQP `properties` section) may carry anything, and
/// what has no variant here ([`PropertyValue::Encoded`]) keeps its AMQP encoding.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PropertyValue {
    /// `null`.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `ubyte`.
    UByte(u8),
    /// `ushort`.
    UShort(u16),
    /// `uint`.
    UInt(u32),
    /// `ulong`.
    ULong(u64),
    /// `byte`.
    Byte(i8),
    /// `short`.
    Short(i16),
    /// `int`.
    Int(i32),
    /// `long`.
    Long(i64),
    /// `float`.
    Float(f32),
    /// `double`.
    Double(f64),
    /// `char`.
    Char(char),
    /// `timestamp`: milliseconds since the epoch (finer parts are dropped when sent).
    Timestamp(OffsetDateTime),
    /// `uuid`.
    Uuid(Uuid),
    /// `binary`.
    Binary(Vec<u8>),
    /// `string`.
    String(String),
    /// `symbol` (ASCII).
    Symbol(String),
    /// Any other AMQP value (a decimal, list, map, array or described value), as its AMQP
    /// encoding. Sent as is when it decodes to a simple value.
    Encoded(Vec<u8>),
}

impl PropertyValue {
    /// The string, for [`PropertyValue::String`] and [`PropertyValue::Symbol`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PropertyValue::String(s) | PropertyValue::Symbol(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an `i64`, for every integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            PropertyValue::UByte(v) => Some(i64::from(v)),
            PropertyValue::UShort(v) => Some(i64::from(v)),
            PropertyValue::UInt(v) => Some(i64::from(v)),
            PropertyValue::ULong(v) => i64::try_from(v).ok(),
            PropertyValue::Byte(v) => Some(i64::from(v)),
            PropertyValue::Short(v) => Some(i64::from(v)),
            PropertyValue::Int(v) => Some(i64::from(v)),
            PropertyValue::Long(v) => Some(v),
            _ => None,
        }
    }

    /// The AMQP value this is.
    ///
    /// # Errors
    /// `InvalidInput` when an [`PropertyValue::Encoded`] value does not decode, or a symbol is
    /// not ASCII.
    pub(crate) fn to_amqp(&self) -> Result<Value> {
        Ok(match self {
            PropertyValue::Null => Value::Null,
            PropertyValue::Bool(v) => Value::Bool(*v),
            PropertyValue::UByte(v) => Value::Ubyte(*v),
            PropertyValue::UShort(v) => Value::Ushort(*v),
            PropertyValue::UInt(v) => Value::Uint(*v),
            PropertyValue::ULong(v) => Value::Ulong(*v),
            PropertyValue::Byte(v) => Value::Byte(*v),
            PropertyValue::Short(v) => Value::Short(*v),
            PropertyValue::Int(v) => Value::Int(*v),
            PropertyValue::Long(v) => Value::Long(*v),
            PropertyValue::Float(v) => Value::Float((*v).into()),
            PropertyValue::Double(v) => Value::Double((*v).into()),
            PropertyValue::Char(v) => Value::Char(*v),
            PropertyValue::Timestamp(t) => Value::Timestamp(Timestamp::from_milliseconds(millis(*t))),
            PropertyValue::Uuid(u) => Value::Uuid(amqp_uuid(u)),
            PropertyValue::Binary(b) => Value::Binary(Binary::from(b.clone())),
            PropertyValue::String(s) => Value::String(s.clone()),
            PropertyValue::Symbol(s) => {
                if !s.is_ascii() {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("symbol {s:?}: an AMQP symbol is ASCII"),
                    ));
                }
                Value::Symbol(Symbol::from(s.as_str()))
            }
            PropertyValue::Encoded(bytes) => serde_amqp::from_slice(bytes).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("an encoded property value does not decode as AMQP: {e}"),
                )
            })?,
        })
    }

    /// The value as an application property (a simple value).
    ///
    /// # Errors
    /// `InvalidInput` naming `key` when the value is not a simple AMQP value.
    pub(crate) fn to_simple(&self, key: &str) -> Result<SimpleValue> {
        let value = self
            .to_amqp()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("properties[{key:?}]: {e}")))?;
        SimpleValue::try_from(value).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "properties[{key:?}]: application properties hold simple AMQP values only \
                     (no list, map or array)"
                ),
            )
        })
    }

    /// A received AMQP value.
    pub(crate) fn from_amqp(value: &Value) -> PropertyValue {
        match value {
            Value::Null => PropertyValue::Null,
            Value::Bool(v) => PropertyValue::Bool(*v),
            Value::Ubyte(v) => PropertyValue::UByte(*v),
            Value::Ushort(v) => PropertyValue::UShort(*v),
            Value::Uint(v) => PropertyValue::UInt(*v),
            Value::Ulong(v) => PropertyValue::ULong(*v),
            Value::Byte(v) => PropertyValue::Byte(*v),
            Value::Short(v) => PropertyValue::Short(*v),
            Value::Int(v) => PropertyValue::Int(*v),
            Value::Long(v) => PropertyValue::Long(*v),
            Value::Float(v) => PropertyValue::Float(v.into_inner()),
            Value::Double(v) => PropertyValue::Double(v.into_inner()),
            Value::Char(v) => PropertyValue::Char(*v),
            Value::Timestamp(t) => match time_from_ms(t.milliseconds()) {
                Some(time) => PropertyValue::Timestamp(time),
                None => encoded(value),
            },
            Value::Uuid(u) => PropertyValue::Uuid(Uuid::from_bytes(u.clone().into_inner())),
            Value::Binary(b) => PropertyValue::Binary(b.to_vec()),
            Value::String(s) => PropertyValue::String(s.clone()),
            Value::Symbol(s) => PropertyValue::Symbol(s.0.clone()),
            other => encoded(other),
        }
    }

    /// A received application property.
    pub(crate) fn from_simple(value: &SimpleValue) -> PropertyValue {
        PropertyValue::from_amqp(&Value::from(value.clone()))
    }
}

fn encoded(value: &Value) -> PropertyValue {
    // Encoding a decoded value cannot fail; an empty encoding would only hide a bug of the
    // codec, never lose an application's data (the value came from the wire).
    PropertyValue::Encoded(serde_amqp::to_vec(value).unwrap_or_default())
}

fn amqp_uuid(u: &Uuid) -> fe2o3_amqp::types::primitives::Uuid {
    fe2o3_amqp::types::primitives::Uuid::from(*u.as_bytes())
}

/// Milliseconds since the epoch, as AMQP timestamps count.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A time from milliseconds since the epoch.
pub(crate) fn time_from_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

impl fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::Null => f.write_str("null"),
            PropertyValue::Bool(v) => write!(f, "{v}"),
            PropertyValue::UByte(v) => write!(f, "{v}"),
            PropertyValue::UShort(v) => write!(f, "{v}"),
            PropertyValue::UInt(v) => write!(f, "{v}"),
            PropertyValue::ULong(v) => write!(f, "{v}"),
            PropertyValue::Byte(v) => write!(f, "{v}"),
            PropertyValue::Short(v) => write!(f, "{v}"),
            PropertyValue::Int(v) => write!(f, "{v}"),
            PropertyValue::Long(v) => write!(f, "{v}"),
            PropertyValue::Float(v) => write!(f, "{v}"),
            PropertyValue::Double(v) => write!(f, "{v}"),
            PropertyValue::Char(v) => write!(f, "{v}"),
            PropertyValue::Timestamp(v) => write!(f, "{v}"),
            PropertyValue::Uuid(v) => write!(f, "{v}"),
            PropertyValue::Binary(v) | PropertyValue::Encoded(v) => {
                v.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            PropertyValue::String(v) | PropertyValue::Symbol(v) => f.write_str(v),
        }
    }
}

macro_rules! from_impls {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for PropertyValue {
            fn from(v: $ty) -> Self {
                PropertyValue::$variant(v.into())
            }
        })*
    };
}

from_impls!(
    bool => Bool, u8 => UByte, u16 => UShort, u32 => UInt, u64 => ULong, i8 => Byte,
    i16 => Short, i32 => Int, i64 => Long, f32 => Float, f64 => Double, char => Char,
    OffsetDateTime => Timestamp, Uuid => Uuid, Vec<u8> => Binary, &[u8] => Binary,
    String => String, &str => String, &String => String,
);

/// A message id or correlation id: the four types AMQP allows (§3.2.11–3.2.14).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageId {
    /// A string (what the official SDKs send by default).
    String(String),
    /// An unsigned 64-bit number.
    ULong(u64),
    /// A UUID.
    Uuid(Uuid),
    /// Bytes.
    Binary(Vec<u8>),
}

impl MessageId {
    pub(crate) fn to_amqp(&self) -> AmqpMessageId {
        match self {
            MessageId::String(s) => AmqpMessageId::String(s.clone()),
            MessageId::ULong(v) => AmqpMessageId::Ulong(*v),
            MessageId::Uuid(u) => AmqpMessageId::Uuid(amqp_uuid(u)),
            MessageId::Binary(b) => AmqpMessageId::Binary(Binary::from(b.clone())),
        }
    }

    pub(crate) fn from_amqp(id: &AmqpMessageId) -> MessageId {
        match id {
            AmqpMessageId::String(s) => MessageId::String(s.clone()),
            AmqpMessageId::Ulong(v) => MessageId::ULong(*v),
            AmqpMessageId::Uuid(u) => MessageId::Uuid(Uuid::from_bytes(u.clone().into_inner())),
            AmqpMessageId::Binary(b) => MessageId::Binary(b.to_vec()),
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageId::String(s) => f.write_str(s),
            MessageId::ULong(v) => write!(f, "{v}"),
            MessageId::Uuid(u) => write!(f, "{u}"),
            MessageId::Binary(b) => b.iter().try_for_each(|b| write!(f, "{b:02x}")),
        }
    }
}

impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        MessageId::String(s.to_owned())
    }
}

impl From<String> for MessageId {
    fn from(s: String) -> Self {
        MessageId::String(s)
    }
}

impl From<u64> for MessageId {
    fn from(v: u64) -> Self {
        MessageId::ULong(v)
    }
}

impl From<Uuid> for MessageId {
    fn from(u: Uuid) -> Self {
        MessageId::Uuid(u)
    }
}

impl From<Vec<u8>> for MessageId {
    fn from(b: Vec<u8>) -> Self {
        MessageId::Binary(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simple_type_round_trips_through_amqp() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap();
        let values = [
            PropertyValue::Null,
            true.into(),
            7u8.into(),
            7u16.into(),
            7u32.into(),
            u64::MAX.into(),
            (-7i8).into(),
            (-7i16).into(),
            (-7i32).into(),
            i64::MIN.into(),
            1.5f32.into(),
            (-2.25f64).into(),
            'Ä'.into(),
            t.into(),
            Uuid::from_u128(42).into(),
            vec![0u8, 255].into(),
            "ünïcode".into(),
            PropertyValue::Symbol("sym".into()),
        ];
        for value in values {
            let simple = value.to_simple("k").unwrap();
            assert_eq!(PropertyValue::from_simple(&simple), value);
        }
    }

    #[test]
    fn composite_values_are_kept_encoded_and_refused_as_application_properties() {
        let list = Value::List(vec![Value::Int(1)]);
        let received = PropertyValue::from_amqp(&list);
        assert_eq!(
            received,
            PropertyValue::Encoded(serde_amqp::to_vec(&list).unwrap())
        );
        let e = received.to_simple("nested").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("properties[\"nested\"]"), "{e}");
        let e = PropertyValue::Symbol("ä".into()).to_simple("s").unwrap_err();
        assert!(e.to_string().contains("ASCII"), "{e}");
        let e = PropertyValue::Encoded(vec![0xff]).to_simple("raw").unwrap_err();
        assert!(e.to_string().contains("does not decode"), "{e}");
    }

    #[test]
    fn message_ids_round_trip() {
        for id in [
            MessageId::from("m-1"),
            MessageId::from(9u64),
            MessageId::from(Uuid::from_u128(3)),
            MessageId::from(vec![1u8, 2]),
        ] {
            assert_eq!(MessageId::from_amqp(&id.to_amqp()), id);
        }
    }
}
