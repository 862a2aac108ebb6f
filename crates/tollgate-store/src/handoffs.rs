//! The handoff queue: one row per handoff, an index of what the sessions'
//! journals hold (the journal stays the truth), written in the same
//! transaction as the journal entry that opens or moves the handoff, so the
//! queue never shows what the journal does not. People read it by tenant,
//! most urgent first, oldest first within an urgency.

use crate::batch::Bind;
use crate::{Error, SessionTx, Store, TxInner};
use sqlx::Row;

/// A handoff as the queue holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffRow {
    /// The handoff's id.
    pub id: String,
    /// The tenant of its session.
    pub tenant: String,
    /// The session it belongs to.
    pub session_id: String,
    /// The call that opened it.
    pub call_id: String,
    /// That call's tool.
    pub tool: String,
    /// `open`, `claimed`, `approved`, `denied`, `resolved` or `expired`.
    pub status: String,
    /// Its urgency, as the workflow names it.
    pub urgency: String,
    /// The urgency's rank in the workflow's levels (higher: more urgent).
    pub urgency_rank: i64,
    /// The verified customer, if the session established one.
    pub customer_id: Option<String>,
    /// Who holds the claim (or decided it).
    pub claimed_by: Option<String>,
    /// The call that used its approval, once one did.
    pub consumed_by: Option<String>,
    /// When it was opened, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it last moved.
    pub updated_ms: i64,
    /// When it expires if nobody acts (open or claimed), or when its
    /// approval expires (approved).
    pub expires_ms: i64,
    /// Everything a person sees, as JSON text (the handoff and its context).
    pub body: String,
}

/// Which handoffs to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandoffQuery {
    /// Only this tenant's.
    pub tenant: String,
    /// Only these statuses (empty: all).
    pub statuses: Vec<String>,
    /// Only those opened at or after this time.
    pub since_ms: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

const COLUMNS: &str = "id, tenant, session_id, call_id, tool, status, urgency, urgency_rank, customer_id, claimed_by, \
                       consumed_by, created_ms, updated_ms, expires_ms, body";

fn row_of<R: Row>(row: &R) -> Result<HandoffRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(HandoffRow {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        session_id: row.try_get("session_id")?,
        call_id: row.try_get("call_id")?,
        tool: row.try_get("tool")?,
        status: row.try_get("status")?,
        urgency: row.try_get("urgency")?,
        urgency_rank: row.try_get("urgency_rank")?,
        customer_id: row.try_get("customer_id")?,
        claimed_by: row.try_get("claimed_by")?,
        consumed_by: row.try_get("consumed_by")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        expires_ms: row.try_get("expires_ms")?,
        body: row.try_get("body")?,
    })
}

/// Writes a row, replacing the one of the same id (numbered placeholders;
/// SQLite reads `$n` as `?n`).
pub(crate) const UPSERT: &str = "INSERT INTO tollgate_handoffs (id, tenant, session_id, call_id, tool, status, \
    urgency, urgency_rank, customer_id, claimed_by, consumed_by, created_ms, updated_ms, expires_ms, body) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, claimed_by = excluded.claimed_by, \
    consumed_by = excluded.consumed_by, updated_ms = excluded.updated_ms, expires_ms = excluded.expires_ms, \
    body = excluded.body";

/// A row's values, in [`UPSERT`]'s order.
pub(crate) fn binds(row: &HandoffRow) -> [Bind<'_>; 15] {
    [
        Bind::Text(&row.id),
        Bind::Text(&row.tenant),
        Bind::Text(&row.session_id),
        Bind::Text(&row.call_id),
        Bind::Text(&row.tool),
        Bind::Text(&row.status),
        Bind::Text(&row.urgency),
        Bind::Int(row.urgency_rank),
        Bind::OptionalText(row.customer_id.as_deref()),
        Bind::OptionalText(row.claimed_by.as_deref()),
        Bind::OptionalText(row.consumed_by.as_deref()),
        Bind::Int(row.created_ms),
        Bind::Int(row.updated_ms),
        Bind::Int(row.expires_ms),
        Bind::Text(&row.body),
    ]
}

impl SessionTx {
    /// Puts a handoff row (new, or moved) into the queue with this
    /// transaction: written at commit, with the journal entries it indexes.
    /// Its session must be locked in this transaction.
    pub fn put_handoff(&mut self, row: HandoffRow) -> Result<(), Error> {
        if self.read_only() {
            return Err(Error::ReadOnly("a snapshot writes no handoff".to_owned()));
        }
        for text in [&row.id, &row.tenant, &row.call_id, &row.tool, &row.status, &row.urgency, &row.body]
            .into_iter()
            .chain(row.customer_id.iter())
            .chain(row.claimed_by.iter())
            .chain(row.consumed_by.iter())
        {
            crate::refuse_nul("a handoff", text)?;
        }
        if !self.holds(&row.session_id) {
            return Err(Error::NoSession(format!("{} (not locked in this transaction)", row.session_id)));
        }
        self.queue_handoff(row);
        Ok(())
    }

    /// The handoff `id` as this transaction sees it (put in it, or stored).
    pub async fn handoff(&mut self, id: &str) -> Result<Option<HandoffRow>, Error> {
        if let Some(row) = self.put_handoffs().iter().rev().find(|row| row.id == id) {
            return Ok(Some(row.clone()));
        }
        let sql = format!("SELECT {COLUMNS} FROM tollgate_handoffs WHERE id = $1");
        match self.inner_mut() {
            TxInner::Sqlite(c) => c.row(&sql.replace('$', "?"), &[Bind::Text(id)], native_row),
            TxInner::Postgres(c) => {
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut **c).await?;
                Ok(row.map(|row| row_of(&row)).transpose()?)
            }
        }
    }
}

/// A row read on SQLite's direct connection, in [`COLUMNS`]' order.
fn native_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<HandoffRow> {
    Ok(HandoffRow {
        id: row.get(0)?,
        tenant: row.get(1)?,
        session_id: row.get(2)?,
        call_id: row.get(3)?,
        tool: row.get(4)?,
        status: row.get(5)?,
        urgency: row.get(6)?,
        urgency_rank: row.get(7)?,
        customer_id: row.get(8)?,
        claimed_by: row.get(9)?,
        consumed_by: row.get(10)?,
        created_ms: row.get(11)?,
        updated_ms: row.get(12)?,
        expires_ms: row.get(13)?,
        body: row.get(14)?,
    })
}

impl Store {
    /// One handoff.
    pub async fn handoff(&self, id: &str) -> Result<Option<HandoffRow>, Error> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tollgate_handoffs WHERE id = $1"));
        let row = match self.backend_ref() {
            crate::Backend::Sqlite(sqlite) => {
                sqlx::query(sql).bind(id).fetch_optional(&sqlite.pool).await?.map(|row| row_of(&row))
            }
            crate::Backend::Postgres(pool) => sqlx::query(sql).bind(id).fetch_optional(pool).await?.map(|r| row_of(&r)),
        };
        Ok(row.transpose()?)
    }

    /// A tenant's handoffs: most urgent first, then oldest first.
    pub async fn handoffs(&self, query: &HandoffQuery) -> Result<Vec<HandoffRow>, Error> {
        let mut sql = format!("SELECT {COLUMNS} FROM tollgate_handoffs WHERE tenant = $1 AND created_ms >= $2");
        for (n, _) in query.statuses.iter().enumerate() {
            sql.push_str(if n == 0 { " AND status IN (" } else { ", " });
            sql.push_str(&format!("${}", n + 4));
        }
        if !query.statuses.is_empty() {
            sql.push(')');
        }
        sql.push_str(" ORDER BY urgency_rank DESC, created_ms, id LIMIT $3");
        let since = query.since_ms.unwrap_or(i64::MIN);
        macro_rules! fetch {
            ($pool:expr) => {{
                let mut statement =
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(&query.tenant).bind(since).bind(query.limit);
                for status in &query.statuses {
                    statement = statement.bind(status);
                }
                statement.fetch_all($pool).await?.iter().map(row_of).collect::<Result<Vec<_>, _>>()?
            }};
        }
        Ok(match self.backend_ref() {
            crate::Backend::Sqlite(sqlite) => fetch!(&sqlite.pool),
            crate::Backend::Postgres(pool) => fetch!(pool),
        })
    }

    /// Handoffs of every tenant still waiting for a person whose time ran
    /// out before `now_ms`: what the expiry sweep acts on.
    pub async fn overdue_handoffs(&self, now_ms: i64, limit: i64) -> Result<Vec<HandoffRow>, Error> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tollgate_handoffs WHERE status IN ('open', 'claimed') AND expires_ms < $1 \
             ORDER BY expires_ms, id LIMIT $2"
        ));
        let rows = match self.backend_ref() {
            crate::Backend::Sqlite(sqlite) => sqlx::query(sql)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&sqlite.pool)
                .await?
                .iter()
                .map(row_of)
                .collect::<Result<Vec<_>, _>>()?,
            crate::Backend::Postgres(pool) => sqlx::query(sql)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(row_of)
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(rows)
    }

    /// Handoffs of every tenant waiting for a person (open or claimed), by
    /// urgency: how many, and when the oldest was opened. What `/metrics`
    /// shows, so a team can alert on a queue nobody works.
    pub async fn waiting_handoffs(&self) -> Result<Vec<WaitingHandoffs>, Error> {
        const SQL: &str = "SELECT urgency, COUNT(*), MIN(created_ms) FROM tollgate_handoffs \
                           WHERE status IN ('open', 'claimed') GROUP BY urgency ORDER BY urgency";
        fn waiting<R: Row>(rows: &[R]) -> Result<Vec<WaitingHandoffs>, Error>
        where
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|row| {
                    Ok(WaitingHandoffs {
                        urgency: row.try_get(0)?,
                        count: row.try_get(1)?,
                        oldest_created_ms: row.try_get(2)?,
                    })
                })
                .collect()
        }
        match self.backend_ref() {
            crate::Backend::Sqlite(sqlite) => waiting(&sqlx::query(SQL).fetch_all(&sqlite.pool).await?),
            crate::Backend::Postgres(pool) => waiting(&sqlx::query(SQL).fetch_all(pool).await?),
        }
    }
}

/// Handoffs waiting for a person, of one urgency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingHandoffs {
    /// The urgency, as the workflows name it.
    pub urgency: String,
    /// How many are open or claimed.
    pub count: i64,
    /// When the oldest of them was opened (ms since the Unix epoch).
    pub oldest_created_ms: i64,
}
