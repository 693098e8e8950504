//! The policy-set pages (admins): what is enforced and in shadow for each set name,
//! its versions, shadow divergence counts and samples; promote and roll back, each
//! confirmed and recorded as an audited admin act.

use std::collections::HashMap;

use crate::pages::Signed;
use crate::{Answer, Console};

/// `GET /console/sets` (`rest` empty) and `GET /console/sets/{name}[/...]`.
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

/// `POST /console/sets/{name}/{act}` (the form's CSRF token already checked).
pub(crate) async fn post(
    console: &Console,
    signed: &Signed<'_>,
    rest: &str,
    form: &HashMap<String, String>,
) -> Answer {
    if let Some(refused) = crate::admin_only(signed) {
        return refused;
    }
    let _ = (console, rest, form);
    crate::routes::not_found(signed)
}
