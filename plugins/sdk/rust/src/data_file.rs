//! A data file of the policy set, parsed once and kept.

use std::sync::OnceLock;

/// A data file of the set (a name in the manifest's `data` list) and its parsed form,
/// kept for the rest of the instance's life. Declare it as a `static` and call
/// [`DataFile::get`] from `configure`, so that a missing or malformed file refuses the
/// set at load, and again from `evaluate`, which then finds it parsed.
///
/// Parsed in `configure`, a file is parsed once per load: the host snapshots the
/// instance after `configure` and every fresh instance starts from that snapshot. A
/// plugin the host cannot snapshot parses it once per instance (see
/// docs/plugin-authors.md), so keep data files small.
///
/// ```ignore
/// static USERS: DataFile<Users> = DataFile::new("users.json", Users::parse);
///
/// fn configure(_: &[Attribute]) -> Result<(), String> {
///     USERS.get().map(|_| ())
/// }
/// ```
#[derive(Debug)]
pub struct DataFile<T> {
    name: &'static str,
    parse: fn(&[u8]) -> Result<T, String>,
    parsed: OnceLock<T>,
}

impl<T> DataFile<T> {
    /// The data file `name`, read with `parse` on first use.
    pub const fn new(name: &'static str, parse: fn(&[u8]) -> Result<T, String>) -> Self {
        Self {
            name,
            parse,
            parsed: OnceLock::new(),
        }
    }

    /// The file's name, as in the manifest's `data` list.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The parsed file: read from the host and parsed on the first call, then kept.
    /// The error says which file is missing or why it does not parse.
    pub fn get(&self) -> Result<&T, String> {
        if let Some(parsed) = self.parsed.get() {
            return Ok(parsed);
        }
        let bytes = crate::data(self.name).ok_or_else(|| {
            format!(
                "data file `{}` is not in the policy set; list it in the manifest's `data`",
                self.name
            )
        })?;
        let parsed = (self.parse)(&bytes).map_err(|e| format!("data file `{}`: {e}", self.name))?;
        Ok(self.parsed.get_or_init(|| parsed))
    }
}
