//! Typed look-ups in attribute lists.

use crate::{Attribute, Value};

/// Look-ups by name in a list of attributes (`principal.attributes`, `context`...).
/// Each typed getter answers `None` when the attribute is missing or of another type,
/// so a rule written as `ctx.int("risk").is_some_and(|r| r >= 80)` never matches on
/// bad input.
pub trait AttributesExt {
    /// The value named `name`.
    fn get(&self, name: &str) -> Option<&Value>;

    /// A string attribute.
    fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer attribute.
    fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A float attribute (integers widen).
    fn float(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Some(Value::Float(f)) => Some(*f),
            #[expect(clippy::cast_precision_loss, reason = "attribute integers are small")]
            Some(Value::Int(i)) => Some(*i as f64),
            _ => None,
        }
    }

    /// A boolean attribute.
    fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Value::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    /// A list-of-strings attribute.
    fn strings(&self, name: &str) -> Option<&[String]> {
        match self.get(name) {
            Some(Value::Strings(s)) => Some(s),
            _ => None,
        }
    }
}

impl AttributesExt for [Attribute] {
    fn get(&self, name: &str) -> Option<&Value> {
        self.iter().find(|a| a.name == name).map(|a| &a.value)
    }
}

impl AttributesExt for Vec<Attribute> {
    fn get(&self, name: &str) -> Option<&Value> {
        AttributesExt::get(self.as_slice(), name)
    }
}
