//! How `hermod consume` prints messages: `raw` (the value's bytes and a
//! newline), `json` (one message object per line) or `table` (fixed-width
//! columns, written row by row as messages arrive). Each message is
//! flushed before the caller settles it, so an acked message is never one
//! that was lost in a buffer.

use std::io::Write;

use hermod_api::MessageOut;

use super::output;

/// Widest value shown in `--format table`.
const TABLE_VALUE_CHARS: usize = 60;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// The value's bytes and a newline.
    Raw,
    /// One message JSON object per line.
    Json,
    /// Readable columns.
    Table,
}

/// Prints messages in one format, flushing each so that a message is out
/// before it is acked.
pub(crate) struct Printer<W: Write> {
    format: Format,
    out: W,
    header_done: bool,
}

impl<W: Write> Printer<W> {
    pub(crate) fn new(format: Format, out: W) -> Printer<W> {
        Printer {
            format,
            out,
            header_done: false,
        }
    }

    pub(crate) fn print(&mut self, message: &MessageOut) -> anyhow::Result<()> {
        match self.format {
            Format::Raw => {
                self.out.write_all(&message.value_bytes())?;
                self.out.write_all(b"\n")?;
            }
            Format::Json => {
                serde_json::to_writer(&mut self.out, message)?;
                self.out.write_all(b"\n")?;
            }
            Format::Table => self.table_row(message)?,
        }
        self.out.flush()?;
        Ok(())
    }

    fn table_row(&mut self, message: &MessageOut) -> std::io::Result<()> {
        if !std::mem::replace(&mut self.header_done, true) {
            writeln!(
                self.out,
                "{}",
                table_line("PARTITION/OFFSET", "ID", "DELIV", "KEY", "VALUE")
            )?;
        }
        let position = format!("{}/{}", message.partition, message.offset);
        let deliveries = output::or_dash(message.delivery_count);
        let key = key_text(message);
        let value = value_text(message);
        writeln!(
            self.out,
            "{}",
            table_line(&position, &message.id, &deliveries, &key, &value)
        )
    }
}

/// One line of `--format table`: fixed widths, since rows are printed as
/// they arrive (ids are not cut, so a longer id shifts only its own row).
fn table_line(position: &str, id: &str, deliveries: &str, key: &str, value: &str) -> String {
    format!("{position:<16}  {id:<26}  {deliveries:>5}  {key:<16}  {value}")
        .trim_end()
        .to_owned()
}

fn key_text(message: &MessageOut) -> String {
    match (&message.key, &message.key_base64) {
        (Some(key), _) => output::cell(key, 16),
        (None, Some(_)) => "(binary)".to_owned(),
        (None, None) => "-".to_owned(),
    }
}

fn value_text(message: &MessageOut) -> String {
    match (&message.value, &message.value_base64) {
        (Some(value), _) => output::cell(value, TABLE_VALUE_CHARS),
        (None, Some(_)) => format!("({} bytes, binary)", message.value_bytes().len()),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn message(partition: u32, offset: u64, value: &str) -> MessageOut {
        MessageOut {
            id: format!("m{offset}"),
            partition,
            offset,
            timestamp_ms: 0,
            key: None,
            key_base64: None,
            value: Some(value.to_owned()),
            value_base64: None,
            headers: Default::default(),
            routing_key: None,
            dedup_id: None,
            dead_letter: None,
            receipt: Some(format!("r{offset}")),
            delivery_count: Some(1),
        }
    }

    fn printed(format: Format, messages: &[MessageOut]) -> String {
        let mut printer = Printer::new(format, Vec::new());
        for m in messages {
            printer.print(m).unwrap();
        }
        String::from_utf8(printer.out).unwrap()
    }

    #[test]
    fn raw_prints_values() {
        let out = printed(Format::Raw, &[message(0, 1, "a"), message(0, 2, "b")]);
        assert_eq!(out, "a\nb\n");
    }

    #[test]
    fn json_prints_one_object_per_line() {
        let out = printed(Format::Json, &[message(0, 1, "a"), message(0, 2, "b")]);
        let lines: Vec<MessageOut> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![message(0, 1, "a"), message(0, 2, "b")]);
    }

    #[test]
    fn table_prints_a_header_then_rows() {
        let mut keyed = message(1, 7, "line\nbreak");
        keyed.key = Some("k".to_owned());
        let out = printed(Format::Table, &[keyed, message(0, 8, "x")]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("PARTITION/OFFSET  ID"));
        assert!(lines[1].starts_with("1/7               m7"));
        assert!(lines[1].ends_with("  k                 line\\nbreak"));
        assert!(lines[2].ends_with("1  -                 x"));
    }
}
