//! The measurements pages (admins): `arbiter replay` reports, baseline against
//! candidate, drawn as charts on the server (SVG, no script).
//!
//! Reports are the files `arbiter replay --save DIR` writes; the console reads them
//! from `<data_dir>/reports` (the directory of the audit log, `<data_dir>/audit.db`)
//! or the directory given to [`Console::with_reports`]. A report is named in the URL
//! by its file stem, checked strictly before any file is touched: only
//! `[A-Za-z0-9._-]`, no `..`, and it must be a `.json` file in that directory.

mod page;
mod report;
#[cfg(test)]
mod tests;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use arbiter_service::app::App;
use http::StatusCode;

use crate::pages::Signed;
use crate::{Answer, Console, web};

use self::report::Doc;

/// The reports directory's name in the data directory.
pub(crate) const REPORTS_DIR: &str = "reports";

/// The largest report read: a replay's document is a few kilobytes plus its examples
/// (`--examples N` of them), so 8 MiB is far past any real one and bounds what a stray
/// file can make the server read.
const MAX_REPORT_BYTES: u64 = 8 << 20;

/// Reports the list shows (the newest by file name): enough for months of daily runs,
/// few enough that the page reads quickly.
const MAX_LISTED: usize = 200;

/// The longest report id accepted: the saved names are 35 characters.
const MAX_ID_LEN: usize = 128;

/// `<data_dir>/reports` of the server behind `app`: beside its audit log, which is
/// always `<data_dir>/audit.db`. `None` when the audit log is off (there is then no
/// data directory to read from unless one is given).
pub(crate) fn default_dir(app: &App) -> Option<PathBuf> {
    app.audit()
        .and_then(|log| log.path().parent())
        .map(|data| data.join(REPORTS_DIR))
}

/// `GET /console/measurements` (`rest` empty) and `/console/measurements/{report}`.
pub(crate) async fn get(
    console: &Console,
    signed: &Signed<'_>,
    rest: &str,
    _query: Option<&str>,
) -> Answer {
    if let Some(refused) = crate::admin_only(signed) {
        return refused;
    }
    if !rest.is_empty() && !is_report_id(rest) {
        return crate::routes::not_found(signed);
    }
    let Some(dir) = console.reports.clone() else {
        return web::html(StatusCode::OK, page::no_directory(signed));
    };
    if rest.is_empty() {
        let listed = tokio::task::spawn_blocking(move || list(&dir)).await;
        return match listed {
            Ok(Ok(entries)) => web::html(StatusCode::OK, page::list(&entries, signed)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                web::html(StatusCode::OK, page::list(&[], signed))
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot list replay reports");
                let text = format!("cannot read the reports directory: {e}");
                crate::refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Unavailable",
                    &text,
                    Some(signed),
                )
            }
            Err(_) => crate::refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unavailable",
                "reading the reports stopped: try again",
                Some(signed),
            ),
        };
    }
    let stem = rest.to_string();
    let path = dir.join(format!("{stem}.json"));
    let read = tokio::task::spawn_blocking(move || read(&path)).await;
    match read {
        Ok(Ok(doc)) => web::html(StatusCode::OK, page::report(&stem, &doc, signed)),
        Ok(Err(Problem::Missing)) => crate::routes::not_found(signed),
        Ok(Err(problem)) => {
            let status = problem.status();
            web::html(status, page::problem(&stem, &problem.to_string(), signed))
        }
        Err(_) => crate::refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unavailable",
            "reading the report stopped: try again",
            Some(signed),
        ),
    }
}

/// A report's id as the URL names it: its file stem. Only `[A-Za-z0-9._-]`, no `..`,
/// no leading dot, so it can only name a file directly in the reports directory.
pub(crate) fn is_report_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && !s.starts_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a report cannot be shown.
#[derive(Debug)]
pub(crate) enum Problem {
    /// No such file.
    Missing,
    /// Larger than [`MAX_REPORT_BYTES`].
    TooLarge,
    /// The file cannot be read.
    Unreadable(std::io::Error),
    /// Not JSON, or JSON of another shape.
    Malformed(serde_json::Error),
    /// JSON, but without a set's report in it.
    NotAReport,
}

impl Problem {
    fn status(&self) -> StatusCode {
        match self {
            Self::Missing => StatusCode::NOT_FOUND,
            Self::Unreadable(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TooLarge | Self::Malformed(_) | Self::NotAReport => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => write!(f, "there is no such report"),
            Self::TooLarge => write!(
                f,
                "the file is larger than {} MiB, more than any replay report",
                MAX_REPORT_BYTES >> 20
            ),
            Self::Unreadable(e) => write!(f, "the file cannot be read: {e}"),
            Self::Malformed(e) => write!(
                f,
                "the file is not a replay report (JSON as `arbiter replay --save` writes it): {e}"
            ),
            Self::NotAReport => write!(
                f,
                "the file is JSON but holds no set's report (`report`, or `baseline` and `candidate`)"
            ),
        }
    }
}

/// The report in the file at `path`.
pub(crate) fn read(path: &Path) -> Result<Doc, Problem> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Problem::Missing),
        Err(e) => return Err(Problem::Unreadable(e)),
    };
    if !file.metadata().map_err(Problem::Unreadable)?.is_file() {
        return Err(Problem::Missing);
    }
    let mut bytes = Vec::new();
    file.take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Problem::Unreadable)?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(Problem::TooLarge);
    }
    let doc: Doc = serde_json::from_slice(&bytes).map_err(Problem::Malformed)?;
    if doc.sets().is_empty() {
        return Err(Problem::NotAReport);
    }
    Ok(doc)
}

/// One file of the reports directory, read or not.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) stem: String,
    pub(crate) doc: Result<Doc, Problem>,
}

/// The reports in `dir`, newest first (by their time, then by name).
fn list(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_string))
        .filter(|stem| is_report_id(stem))
        .collect();
    // Saved names start with their UTC time, so the newest sort last.
    stems.sort_unstable_by(|a, b| b.cmp(a));
    stems.truncate(MAX_LISTED);
    let mut entries: Vec<Entry> = stems
        .into_iter()
        .map(|stem| Entry {
            doc: read(&dir.join(format!("{stem}.json"))),
            stem,
        })
        .collect();
    let time = |e: &Entry| e.doc.as_ref().ok().and_then(|d| d.generated_micros);
    entries.sort_by(|a, b| time(b).cmp(&time(a)).then_with(|| b.stem.cmp(&a.stem)));
    Ok(entries)
}
