//! A sans-IO parser of Server-Sent Events (the `text/event-stream` format of
//! the HTML standard): bytes in, in chunks split anywhere, whole events out.
//! Lines end in LF, CRLF or CR (a CRLF split across two chunks counts once);
//! lines starting with `:` are comments (keep-alives); `data` lines of one
//! event are joined with `\n`; a blank line ends an event. Events without
//! data are not dispatched, as the standard says. One event may hold at most
//! `limit_bytes`, so a misbehaving server cannot make the client grow without
//! bound.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field; `message` when the event names none.
    pub event: String,
    pub data: String,
    /// The `id` field, if the event has one.
    pub id: Option<String>,
}

/// The event being read was larger than the parser's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an event is larger than {limit_bytes} bytes")]
pub struct EventTooLarge {
    pub limit_bytes: usize,
}

/// The parser's state between chunks.
#[derive(Debug)]
pub struct SseParser {
    limit_bytes: usize,
    line: Vec<u8>,
    /// The last byte seen was a CR, so a following LF ends no new line.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

/// 16 MiB: far above the largest message the server sends (1 MiB of value,
/// a third more as base64, plus headers).
pub const DEFAULT_LIMIT_BYTES: usize = 16 << 20;

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(DEFAULT_LIMIT_BYTES)
    }
}

impl SseParser {
    /// A parser accepting events of up to `limit_bytes`.
    pub fn new(limit_bytes: usize) -> SseParser {
        SseParser {
            limit_bytes,
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
        }
    }

    /// Feeds the next chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        let mut events = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => events.extend(self.end_line()),
                _ => self.line.push(byte),
            }
            if self.line.len() + self.data.len() > self.limit_bytes {
                return Err(EventTooLarge {
                    limit_bytes: self.limit_bytes,
                });
            }
        }
        Ok(events)
    }

    /// Handles the line just ended; a blank one may complete an event.
    fn end_line(&mut self) -> Option<SseEvent> {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = split_field(&line);
        self.apply(field, value);
        None
    }

    fn apply(&mut self, field: &str, value: &str) {
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // The standard ignores ids holding NUL.
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            // `retry` and unknown fields do not matter to this client.
            _ => {}
        }
    }

    /// The event gathered so far, if it has data; the state is reset either way.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let id = self.id.take();
        let data = std::mem::take(&mut self.data);
        std::mem::take(&mut self.has_data).then(|| SseEvent {
            event: event.unwrap_or_else(|| "message".to_owned()),
            data,
            id,
        })
    }
}

/// `field: value` with one optional space after the colon; a line without
/// a colon is a field with an empty value.
fn split_field(line: &str) -> (&str, &str) {
    match line.split_once(':') {
        Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: "message".to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    fn parse_in_chunks(input: &[u8], chunk_bytes: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        input
            .chunks(chunk_bytes)
            .flat_map(|c| parser.push(c).unwrap())
            .collect()
    }

    const STREAM: &str = ": keep-alive\n\nevent: message\nid: m1\ndata: {\"v\":\"é\"}\n\n\
                          : keep-alive\n\nevent: message\ndata: a\ndata: b\n\n";

    #[test]
    fn whole_stream_at_once() {
        let events = parse_in_chunks(STREAM.as_bytes(), STREAM.len());
        assert_eq!(
            events,
            vec![message("{\"v\":\"é\"}", Some("m1")), message("a\nb", None)]
        );
    }

    #[test]
    fn chunks_split_at_every_byte_boundary() {
        let whole = parse_in_chunks(STREAM.as_bytes(), STREAM.len());
        for size in 1..STREAM.len() {
            assert_eq!(parse_in_chunks(STREAM.as_bytes(), size), whole, "{size}");
        }
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let crlf = STREAM.replace('\n', "\r\n");
        let cr = STREAM.replace('\n', "\r");
        let whole = parse_in_chunks(STREAM.as_bytes(), STREAM.len());
        for size in 1..crlf.len() {
            assert_eq!(parse_in_chunks(crlf.as_bytes(), size), whole, "crlf {size}");
            assert_eq!(parse_in_chunks(cr.as_bytes(), size), whole, "cr {size}");
        }
    }

    #[test]
    fn comments_and_events_without_data_are_not_dispatched() {
        let events = parse_in_chunks(b": hello\n\nevent: ping\nid: 7\n\n:x\n", 3);
        assert!(events.is_empty());
    }

    #[test]
    fn fields_without_space_or_value() {
        let events = parse_in_chunks(b"event:other\ndata:x\ndata\n\n", 100);
        assert_eq!(
            events,
            vec![SseEvent {
                event: "other".to_owned(),
                data: "x\n".to_owned(),
                id: None,
            }]
        );
    }

    #[test]
    fn an_unfinished_event_is_held_back() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: a\n").unwrap().is_empty());
        assert_eq!(parser.push(b"\n").unwrap(), vec![message("a", None)]);
    }

    #[test]
    fn events_over_the_limit_are_refused() {
        let mut parser = SseParser::new(8);
        assert_eq!(
            parser.push(b"data: 0123456789\n\n"),
            Err(EventTooLarge { limit_bytes: 8 })
        );
    }
}
