//! Rows packed into one: a query that returns many small rows returns one
//! text instead, `string_agg` of every row as `n1,n2,...,nk:` followed by
//! its text fields, whose byte lengths are the last numbers of the header
//! (-1: NULL). `audit verify` on PostgreSQL reads the log this way, a chunk
//! of records a row. (SQLite transactions read rows directly, `native.rs`.)

use crate::Error;

/// One packed record: its header numbers and its texts.
pub(crate) type Record<'a, const N: usize, const T: usize> = ([i64; N], [Option<&'a str>; T]);

/// The records of `packed`, each as its `N` header numbers (the last `T` of
/// them the byte lengths of its texts) and its `T` texts, borrowed.
pub(crate) fn records<const N: usize, const T: usize>(mut packed: &str) -> Result<Vec<Record<'_, N, T>>, Error> {
    let damaged = || Error::Damaged("a packed result cannot be read back (malformed)".to_owned());
    let mut out = Vec::new();
    while !packed.is_empty() {
        let colon = packed.find(':').ok_or_else(damaged)?;
        let (header, rest) = packed.split_at(colon);
        let mut numbers = [0i64; N];
        let mut fields = header.split(',');
        for number in &mut numbers {
            *number = fields.next().and_then(|f| f.parse().ok()).ok_or_else(damaged)?;
        }
        if fields.next().is_some() {
            return Err(damaged());
        }
        let mut rest = rest.get(1..).ok_or_else(damaged)?;
        let mut texts = [None; T];
        for (text, length) in texts.iter_mut().zip(numbers.iter().skip(N.saturating_sub(T))) {
            if *length < 0 {
                continue;
            }
            let length = usize::try_from(*length).map_err(|_| damaged())?;
            *text = Some(rest.get(..length).ok_or_else(damaged)?);
            rest = rest.get(length..).ok_or_else(damaged)?;
        }
        out.push((numbers, texts));
        packed = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use super::*;

    #[test]
    fn records_with_nulls_commas_and_colons_in_their_texts_read_back() {
        let rows = records::<3, 2>("7,2,-1:a:5,0,4:c,\u{e9}").unwrap();
        assert_eq!(rows, vec![([7, 2, -1], [Some("a:"), None]), ([5, 0, 4], [Some(""), Some("c,\u{e9}")])]);
        assert!(records::<3, 2>("1,1,1:\u{e9}").is_err(), "a length inside a character");
        assert!(records::<3, 2>("1,2,9:ab").is_err());
        assert!(records::<3, 2>("1,2:ab").is_err());
        assert!(records::<3, 2>("1,2,2,2:ab").is_err());
        assert!(records::<3, 2>("").unwrap().is_empty());
    }
}
