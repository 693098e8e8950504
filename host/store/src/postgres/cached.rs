//! Statements prepared once per pooled connection and kept (deadpool's statement
//! cache), so each query is one round trip to the database instead of two (prepare,
//! then execute) plus a close. Every statement text here is fixed or picked from a
//! small set of filter combinations, so the cache stays small.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// The parameters of one statement.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Like `query`, with the statement prepared once per connection.
pub(super) async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

/// Like `query_one`, with the statement prepared once per connection.
pub(super) async fn query_one<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_one(&statement, params).await
}

/// Like `query_opt`, with the statement prepared once per connection.
pub(super) async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_opt(&statement, params).await
}

/// Like `execute`, with the statement prepared once per connection.
pub(super) async fn execute<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, Error> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}
