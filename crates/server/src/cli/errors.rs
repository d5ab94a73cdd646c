//! How a failed client command is reported: `<message> (<code>)` and a hint
//! of what to do next, chosen by the error's code and, for `not_found`, by
//! the command (which list would show the names that exist). `main` prints
//! the result after `error: `. A closed stdout (`hermod consume | head`) is
//! not an error.

use super::ClientCommand;

/// Turns a command's failure into the message `main` prints.
pub(crate) fn explain(
    result: anyhow::Result<()>,
    server: &str,
    not_found: &str,
) -> anyhow::Result<()> {
    let Err(error) = result else {
        return Ok(());
    };
    if is_broken_pipe(&error) {
        return Ok(());
    }
    let Some(client_error) = error.downcast_ref::<hermod_client::Error>() else {
        return Err(error);
    };
    let code = client_error.code();
    let mut text = format!("{} ({code})", client_error.message());
    if let Some(hint) = hint(code, server, not_found) {
        text.push_str("\nhint: ");
        text.push_str(&hint);
    }
    Err(anyhow::Error::msg(text))
}

/// What to tell the user to do about an error with `code`.
pub(crate) fn hint(code: &str, server: &str, not_found: &str) -> Option<String> {
    let hint = match code {
        "not_found" => not_found,
        "unreachable" => {
            return Some(format!(
                "is the server running at {server}? start it with `hermod serve` or pass --server URL"
            ))
        }
        "timeout" | "transport" => {
            return Some(format!(
                "the connection to {server} failed; check that the server is up with `curl {server}/readyz`"
            ))
        }
        "invalid_url" => "pass --server http://HOST:PORT (or set HERMOD_SERVER)",
        "already_exists" => "it exists with other settings; compare with `describe`, or delete it first",
        "in_use" => "remove what uses it first: bindings (`hermod exchange list`) or subscriptions",
        "wrong_mode" => "stream subscriptions are read by offset; shared and ordered ones by lease",
        "unknown_receipt" | "lease_expired" => {
            "the lease ran out before the answer; give more time with --visibility-ms"
        }
        "queue_full" => "consume or purge the queue, or raise its max_length",
        "message_too_large" | "body_too_large" => {
            "send smaller messages or batches, or raise max_record_bytes"
        }
        "unavailable" | "too_many_connections" => "the server is busy, starting or stopping; try again shortly",
        "decode" => "the client and server may be of different versions; compare `hermod --version`",
        c if c.starts_with("invalid_") || c == "limit_exceeded" || c == "offset_out_of_range" => {
            "see the accepted values with `--help`"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

/// The `not_found` hint of a command: where to see what exists.
pub(crate) fn not_found_hint(command: &ClientCommand) -> String {
    let list = match command {
        ClientCommand::Topic(_) => "list them with `hermod topic list`",
        ClientCommand::Queue(_) => "list them with `hermod queue list`",
        ClientCommand::Subscription(_) => {
            "list them with `hermod topic list` and `hermod subscription list TOPIC`"
        }
        ClientCommand::Exchange(_) => "list them with `hermod exchange list`",
        ClientCommand::Bind(_) | ClientCommand::Unbind(_) => {
            "check the names with `hermod exchange list`, `hermod topic list` and `hermod queue list`"
        }
        ClientCommand::Publish(a) => a.not_found_hint(),
        ClientCommand::Consume(a) => a.not_found_hint(),
        ClientCommand::Stats(_) => "the server does not know this route; is it a Hermod server?",
        ClientCommand::Trace(_) => {
            "traces are kept in memory for recent messages only, and not across restarts"
        }
    };
    list.to_owned()
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(error: hermod_client::Error) -> String {
        let result = Err(anyhow::Error::new(error));
        let server = "http://127.0.0.1:9080";
        let hint = "list them with `hermod queue list`";
        explain(result, server, hint).unwrap_err().to_string()
    }

    #[test]
    fn api_errors_show_message_code_and_hint() {
        let error = hermod_client::Error::Api {
            status: 404,
            code: "not_found".to_owned(),
            message: "no queue `q`".to_owned(),
        };
        assert_eq!(
            explained(error),
            "no queue `q` (not_found)\nhint: list them with `hermod queue list`"
        );
    }

    #[test]
    fn unknown_codes_have_no_hint() {
        let error = hermod_client::Error::Api {
            status: 500,
            code: "internal".to_owned(),
            message: "boom".to_owned(),
        };
        assert_eq!(explained(error), "boom (internal)");
    }

    #[test]
    fn refused_connections_point_at_the_server() {
        let hint = hint("unreachable", "http://h:1", "").unwrap();
        assert!(hint.contains("hermod serve") && hint.contains("--server"));
    }

    #[test]
    fn a_closed_stdout_is_not_an_error() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(explain(Err(pipe.into()), "", "").is_ok());
    }
}
