//! Readable output: aligned tables (numbers right-aligned), `key: value`
//! blocks for `describe`, settings flattened from their JSON form, JSON for
//! `--json`, and the small formatters they share. Everything here is pure
//! (it returns text), so the shapes are unit-tested.

use std::fmt::Write as _;

use serde::Serialize;

/// Columns of text under a header.
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(
            cells.len(),
            self.headers.len(),
            "a row has one cell per column"
        );
        self.rows.push(cells);
    }

    /// The table as lines, two spaces between columns, no trailing blanks.
    pub(crate) fn render(&self) -> String {
        let widths = self.widths();
        let numeric: Vec<bool> = (0..self.headers.len())
            .map(|c| self.is_numeric(c))
            .collect();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = String::new();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let line = render_line(cells, &widths, &numeric);
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        widths
    }

    /// A column of numbers (or `-` for none) is right-aligned.
    fn is_numeric(&self, column: usize) -> bool {
        !self.rows.is_empty()
            && self.rows.iter().all(|row| {
                let cell = &row[column];
                cell == "-" || cell.parse::<f64>().is_ok()
            })
    }
}

fn render_line(cells: &[String], widths: &[usize], numeric: &[bool]) -> String {
    let mut line = String::new();
    for ((cell, width), right) in cells.iter().zip(widths).zip(numeric) {
        if !line.is_empty() {
            line.push_str("  ");
        }
        let _ = if *right {
            write!(line, "{cell:>width$}")
        } else {
            write!(line, "{cell:<width$}")
        };
    }
    line
}

/// `key: value` lines with the values aligned.
pub(crate) fn key_values(pairs: &[(String, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = String::new();
    for (key, value) in pairs {
        let _ = writeln!(out, "{:<width$} {value}", format!("{key}:"));
    }
    out
}

/// The top-level fields of settings as `(name, value)` pairs, in the order
/// serde_json keeps them: text as is, `null` as `-`, the rest as compact JSON.
pub(crate) fn settings(config: &impl Serialize) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(config) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .map(|(name, value)| (name, plain(&value)))
        .collect()
}

/// A JSON value as a table cell.
pub(crate) fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The pretty JSON of `value`, ending in a newline.
pub(crate) fn json(value: &impl Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// A rate per second with one decimal.
pub(crate) fn rate(per_s: f64) -> String {
    format!("{per_s:.1}")
}

/// An optional figure, `-` when absent.
pub(crate) fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Text for one table cell: control characters escaped (a value's newline
/// must not break the table) and cut to `max_chars` with `…`.
pub(crate) fn cell(text: &str, max_chars: usize) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            let escape = c.is_control().then(|| c.escape_default().to_string());
            escape
                .unwrap_or_else(|| c.to_string())
                .chars()
                .collect::<Vec<_>>()
        })
        .collect();
    if escaped.chars().count() <= max_chars {
        return escaped;
    }
    let cut: String = escaped.chars().take(max_chars.saturating_sub(1)).collect();
    cut + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut table = Table::new(&["NAME", "DEPTH", "RATE"]);
        table.row(vec!["orders".into(), "5".into(), "-".into()]);
        table.row(vec!["a".into(), "1234".into(), "0.5".into()]);
        assert_eq!(
            table.render(),
            "NAME    DEPTH  RATE\n\
             orders      5     -\n\
             a        1234   0.5\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(&["NAME", "KIND"]).render(), "NAME  KIND\n");
    }

    #[test]
    fn key_values_align() {
        let pairs = vec![("name".into(), "q".into()), ("depth".into(), "3".into())];
        assert_eq!(key_values(&pairs), "name:  q\ndepth: 3\n");
    }

    #[test]
    fn settings_flatten_to_text() {
        let config = serde_json::json!({"partitions": 3, "retention_ms": null, "durability": {"interval": {"ms": 5}}, "mode": "fsync"});
        let rows = settings(&config);
        assert!(rows.contains(&("partitions".into(), "3".into())));
        assert!(rows.contains(&("retention_ms".into(), "-".into())));
        assert!(rows.contains(&("durability".into(), r#"{"interval":{"ms":5}}"#.into())));
        assert!(rows.contains(&("mode".into(), "fsync".into())));
    }

    #[test]
    fn cells_escape_and_truncate() {
        assert_eq!(cell("a\nb", 10), "a\\nb");
        assert_eq!(cell("héllo wörld", 6), "héllo…");
        assert_eq!(cell("short", 5), "short");
    }
}
