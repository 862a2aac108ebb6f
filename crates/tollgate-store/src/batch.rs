//! Multi-row statements: a transaction's journal entries, audit records,
//! checkpoints and session rows reach the database at commit as a few
//! statements of many rows each, not one statement per row. On PostgreSQL
//! every statement is a round trip over the socket; with group commit that
//! per-statement cost, not the disk, bounded how many decisions a second
//! one commit held.
//!
//! Row counts are split into powers of two (at most [`BINDS_MAX`] values a
//! statement), so the statements' texts repeat and their prepared forms are
//! reused from the connection's statement cache. (PostgreSQL only: SQLite
//! transactions write one prepared statement a row on their direct
//! connection, `tx.rs` / `native.rs`, which costs no round trip.)

/// Bound values a statement (or an SQLite multi-statement query) holds at
/// most: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32,766 since 3.32);
/// PostgreSQL allows 65,535.
pub(crate) const BINDS_MAX: usize = 32_766;

/// One value bound to a placeholder.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bind<'a> {
    Text(&'a str),
    OptionalText(Option<&'a str>),
    Int(i64),
}

/// The kinds of multi-row statement, each with its SQL around the rows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    /// New journal entries.
    Journal,
    /// New audit records.
    Audit,
    /// Checkpoints, replacing a session's earlier one.
    Checkpoints,
    /// Session rows' chain positions, written back.
    Sessions,
    /// The global audit chain's head (one row).
    Head,
    /// Sessions to read and lock, in id order (PostgreSQL).
    LockSessions,
    /// Sessions to read without locking them (a snapshot).
    ReadSessions,
    /// Journal entries of (session, call) pairs (PostgreSQL).
    Calls,
}

impl Shape {
    /// Values bound per row.
    fn columns(self) -> usize {
        match self {
            Shape::Journal => 6,
            Shape::Audit => 9,
            Shape::Checkpoints => 3,
            Shape::Sessions => 4,
            Shape::Head => 4,
            Shape::LockSessions | Shape::ReadSessions => 1,
            Shape::Calls => 2,
        }
    }

    /// Rows a statement holds at most, apart from the bind limit.
    fn rows_max(self) -> usize {
        match self {
            // `a OR b OR ...` parses as a tree as deep as it is long:
            // kept shallow (SQLite refused past 1,000 when it used this too).
            Shape::Calls => 256,
            _ => usize::MAX,
        }
    }

    /// Appends the statement for `rows` rows to `sql`.
    fn write_sql(self, rows: usize, placeholders: &mut Placeholders, sql: &mut String) {
        let columns = self.columns();
        match self {
            Shape::Head => {
                sql.push_str("UPDATE tollgate_audit_head SET seq = ");
                placeholders.push(sql);
                sql.push_str(", hash = ");
                placeholders.push(sql);
                sql.push_str(", signer = ");
                placeholders.push(sql);
                sql.push_str(", signature = ");
                placeholders.push(sql);
                sql.push_str(" WHERE id = 1");
            }
            Shape::LockSessions | Shape::ReadSessions => {
                sql.push_str(crate::SELECT_SESSIONS);
                sql.push_str(" WHERE id IN (");
                for k in 0..rows {
                    if k > 0 {
                        sql.push_str(", ");
                    }
                    placeholders.push(sql);
                }
                // PostgreSQL locks the rows as the sort emits them: in byte order of their ids.
                sql.push_str(match self {
                    Shape::LockSessions => ") ORDER BY id COLLATE \"C\" FOR UPDATE",
                    _ => ")",
                });
            }
            Shape::Calls => {
                sql.push_str("SELECT seq, kind, call_id, body, at_ms, session_id FROM tollgate_journal");
                sql.push_str(" WHERE ");
                for k in 0..rows {
                    sql.push_str(if k > 0 { " OR (session_id = " } else { "(session_id = " });
                    placeholders.push(sql);
                    sql.push_str(" AND call_id = ");
                    placeholders.push(sql);
                    sql.push(')');
                }
            }
            Shape::Journal | Shape::Audit | Shape::Checkpoints | Shape::Sessions => {
                let (head, tail, casts): (&str, &str, &[&str]) = match self {
                    Shape::Journal => {
                        ("INSERT INTO tollgate_journal (session_id, seq, kind, call_id, body, at_ms) VALUES ", "", &[])
                    }
                    Shape::Audit => (
                        "INSERT INTO tollgate_audit (seq, session_id, session_seq, kind, body, at_ms, prev_hash, \
                         session_prev_hash, hash) VALUES ",
                        "",
                        &[],
                    ),
                    Shape::Checkpoints => (
                        "INSERT INTO tollgate_checkpoints (session_id, seq, state) VALUES ",
                        " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, state = excluded.state",
                        &[],
                    ),
                    _ => (
                        // The VALUES' types are not known from a target column here: PostgreSQL needs the casts.
                        "UPDATE tollgate_sessions SET last_seq = v.column2, audit_seq = v.column3, \
                         audit_hash = v.column4 FROM (VALUES ",
                        ") AS v WHERE tollgate_sessions.id = v.column1",
                        &["", "BIGINT", "BIGINT", ""],
                    ),
                };
                sql.push_str(head);
                for k in 0..rows {
                    sql.push_str(if k > 0 { ", (" } else { "(" });
                    for column in 0..columns {
                        if column > 0 {
                            sql.push_str(", ");
                        }
                        match casts.get(column).filter(|cast| !cast.is_empty()) {
                            Some(cast) => {
                                sql.push_str("CAST(");
                                placeholders.push(sql);
                                sql.push_str(" AS ");
                                sql.push_str(cast);
                                sql.push(')');
                            }
                            None => placeholders.push(sql),
                        }
                    }
                    sql.push(')');
                }
                sql.push_str(tail);
            }
        }
    }
}

/// How placeholders are written: PostgreSQL's `$1, $2, ...`.
pub(crate) enum Placeholders {
    /// `$1, $2, ...` from the next number.
    Numbered { next: usize },
}

impl Placeholders {
    fn push(&mut self, sql: &mut String) {
        match self {
            Placeholders::Numbered { next } => {
                use std::fmt::Write;
                let _ = write!(sql, "${next}");
                *next += 1;
            }
        }
    }
}

/// One statement of `rows` rows and its values, row after row.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    shape: Shape,
    rows: usize,
    binds: Vec<Bind<'a>>,
}

impl<'a> Statement<'a> {
    /// The SQL text, in the placeholder style given.
    pub(crate) fn sql_with(&self, mut placeholders: Placeholders) -> String {
        let mut sql = String::new();
        self.shape.write_sql(self.rows, &mut placeholders, &mut sql);
        sql
    }

    /// The values, in placeholder order.
    pub(crate) fn binds(&self) -> &[Bind<'a>] {
        &self.binds
    }
}

/// Splits `items` into statements of `shape`: row counts are powers of two
/// and each statement binds at most [`BINDS_MAX`] values. `row` pushes one
/// item's values.
pub(crate) fn statements<'a, T>(
    shape: Shape,
    items: &'a [T],
    mut row: impl FnMut(&'a T, &mut Vec<Bind<'a>>),
) -> Vec<Statement<'a>> {
    let columns = shape.columns();
    let rows_max = prev_power_of_two((BINDS_MAX / columns).max(1)).min(shape.rows_max());
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let take = prev_power_of_two(rest.len()).min(rows_max);
        let (chunk, after) = rest.split_at(take);
        let mut binds = Vec::with_capacity(take * columns);
        for item in chunk {
            row(item, &mut binds);
        }
        out.push(Statement { shape, rows: take, binds });
        rest = after;
    }
    out
}

fn prev_power_of_two(n: usize) -> usize {
    if n == 0 { 0 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) }
}

/// Binds `binds` to query `$q` in order.
macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for bind in $binds {
            q = match *bind {
                Bind::Text(text) => q.bind(text),
                Bind::OptionalText(text) => q.bind(text),
                Bind::Int(n) => q.bind(n),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// Runs write statements in a PostgreSQL transaction, one round trip each.
/// (SQLite: `tx.rs` runs them on the transaction's direct connection.)
pub(crate) async fn execute_postgres(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    statements: &[Statement<'_>],
) -> Result<(), sqlx::Error> {
    for statement in statements {
        let sql = statement.sql_with(Placeholders::Numbered { next: 1 });
        let query = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), &statement.binds);
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn rows_are_split_in_powers_of_two_under_the_bind_limit() {
        let items: Vec<i64> = (0..100).collect();
        let sizes: Vec<usize> =
            statements(Shape::Journal, &items, |n, b| b.extend([Bind::Int(*n); 6])).iter().map(|s| s.rows).collect();
        assert_eq!(sizes, vec![64, 32, 4]);
        let items: Vec<i64> = (0..10_000).collect();
        let audit = statements(Shape::Audit, &items, |n, b| b.extend([Bind::Int(*n); 9]));
        assert!(audit.iter().all(|s| s.binds.len() <= BINDS_MAX && s.binds.len() == s.rows * 9));
        assert_eq!(audit.iter().map(|s| s.rows).sum::<usize>(), 10_000);
        assert_eq!(audit[0].rows, 2048);
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut sql = String::new();
        Shape::Checkpoints.write_sql(2, &mut Placeholders::Numbered { next: 5 }, &mut sql);
        assert!(sql.contains("($5, $6, $7), ($8, $9, $10) ON CONFLICT"), "{sql}");
        let mut sql = String::new();
        Shape::Sessions.write_sql(1, &mut Placeholders::Numbered { next: 1 }, &mut sql);
        assert!(sql.contains("($1, CAST($2 AS BIGINT), CAST($3 AS BIGINT), $4)"), "{sql}");
        let mut sql = String::new();
        Shape::Calls.write_sql(2, &mut Placeholders::Numbered { next: 1 }, &mut sql);
        assert!(
            sql.ends_with("WHERE (session_id = $1 AND call_id = $2) OR (session_id = $3 AND call_id = $4)"),
            "{sql}"
        );
    }
}
