//! What both backends store the same way: JSON text columns, and the state an
//! approval's votes put it in.

use crate::StoreError;
use crate::model::ApprovalState;

/// A JSON column of row `id` read back; a column that does not parse is corrupt.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
    id: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt {
        what,
        id: id.to_string(),
    })
}

/// A value as a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serialising plain data (strings, numbers, vectors) cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// The state votes put an approval in: any no rejects; enough yeses approve.
pub(crate) fn decided(votes: impl Iterator<Item = bool>, required: u32) -> ApprovalState {
    let mut yes = 0u32;
    for approve in votes {
        if !approve {
            return ApprovalState::Rejected;
        }
        yes += 1;
    }
    if yes >= required {
        ApprovalState::Approved
    } else {
        ApprovalState::Pending
    }
}
