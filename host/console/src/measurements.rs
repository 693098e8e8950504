//! The measurements pages (admins): `arbiter replay` reports, baseline against
//! candidate, drawn as charts on the server (SVG, no script).

use crate::pages::Signed;
use crate::{Answer, Console};

/// `GET /console/measurements` (`rest` empty) and `/console/measurements/{report}`.
pub(crate) async fn get(
    console: &Console,
    signed: &Signed<'_>,
    rest: &str,
    query: Option<&str>,
) -> Answer {
    if let Some(refused) = crate::admin_only(signed) {
        return refused;
    }
    let _ = (console, rest, query);
    crate::routes::not_found(signed)
}
