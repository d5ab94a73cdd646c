//! Shared helpers for the end-to-end tests: start the real `hermod serve`
//! on an ephemeral port in a temporary data directory, read its port from
//! the banner, talk raw HTTP/1.1 to it (requests with JSON bodies, and
//! Server-Sent Events streams read event by event), and stop it (SIGTERM,
//! SIGINT or `kill -9`). Every wait is a bounded poll; no test sleeps for a
//! fixed time.

#![allow(dead_code)] // Each test file uses its own part of this.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest wait for the banner (a debug build on a busy machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the process to exit after a signal.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for one HTTP answer.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `hermod serve`.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Everything the server wrote to stderr so far (the log).
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    /// Keeps a temporary data directory alive as long as the server.
    _temp: Option<tempfile::TempDir>,
}

/// A server that exited before printing its banner.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stderr: String,
}

impl Server {
    /// Starts `hermod serve ARGS` in a new temporary data directory, on
    /// `127.0.0.1:0`; panics if it does not start.
    pub fn start(args: &[&str]) -> Server {
        let temp = tempfile::tempdir().expect("temporary data directory");
        let mut server = Server::start_in(temp.path(), args);
        server._temp = Some(temp);
        server
    }

    /// Starts `hermod serve --data-dir DATA_DIR ARGS`; panics if it does
    /// not start.
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        Server::try_start_in(data_dir, args, &[])
            .unwrap_or_else(|e| panic!("server did not start ({}):\n{}", e.status, e.stderr))
    }

    /// Starts `hermod serve --data-dir DATA_DIR ARGS` with extra
    /// environment variables; `Err` if it exits before its banner. Adds
    /// `--http 127.0.0.1:0` unless ARGS (or ENV) name an address.
    pub fn try_start_in(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, Exited> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hermod"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args);
        if !args.contains(&"--http") && !env.iter().any(|(k, _)| *k == "HERMOD_HTTP") {
            command.args(["--http", "127.0.0.1:0"]);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        command.env_remove("RUST_LOG");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hermod");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = collect(child.stderr.take().unwrap(), stderr.clone());
        let (ports, stdout_reader) = watch_banner(child.stdout.take().unwrap());
        let mut server = Server {
            child,
            port: 0,
            data_dir: data_dir.to_owned(),
            stderr,
            readers: vec![stderr_reader, stdout_reader],
            _temp: None,
        };
        match ports.recv_timeout(START_TIMEOUT) {
            Ok(port) => {
                server.port = port;
                Ok(server)
            }
            Err(_) => Err(server.exit_before_banner()),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most [`HTTP_TIMEOUT`]) until the log contains `text`: the
    /// log is read by another thread, so a line written before the banner
    /// may not be there yet when the banner is.
    pub fn log_contains(&self, text: &str) -> bool {
        let deadline = Instant::now() + HTTP_TIMEOUT;
        while !self.stderr().contains(text) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGINT (Ctrl-C; a graceful stop).
    pub fn interrupt(&mut self) {
        self.signal(libc::SIGINT);
    }

    /// Kills the server at once (`kill -9`) and reaps it.
    pub fn kill9(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.wait()
    }

    /// Waits at most [`STOP_TIMEOUT`] for the server to exit (panics
    /// otherwise), then for its output to be read to the end.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit in time; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }

    /// Sends SIGTERM and waits for a clean exit (status 0).
    pub fn stop(&mut self) {
        self.terminate();
        let status = self.wait();
        assert!(
            status.success(),
            "exit {status}; stderr:\n{}",
            self.stderr()
        );
    }

    /// Answers `GET PATH` on a fresh connection.
    pub fn get(&self, path: &str) -> Response {
        http(self.port, "GET", path, None)
    }

    /// Answers `METHOD PATH` with a JSON body (`Value::Null` sends none).
    pub fn call(&self, method: &str, path: &str, body: &serde_json::Value) -> Response {
        http_json(self.port, method, path, body)
    }

    /// `call`, asserting a 2xx answer; its JSON (`Null` for an empty body).
    pub fn ok(&self, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let response = self.call(method, path, body);
        assert!(
            (200..300).contains(&response.status),
            "{method} {path}: {} {}",
            response.status,
            response.body
        );
        if response.body.is_empty() {
            serde_json::Value::Null
        } else {
            response.json()
        }
    }

    /// Polls `GET PATH` until it answers `status` (at most [`HTTP_TIMEOUT`]).
    pub fn wait_for_status(&self, path: &str, status: u16) -> Response {
        let deadline = Instant::now() + HTTP_TIMEOUT;
        loop {
            let response = self.get(path);
            if response.status == status || Instant::now() > deadline {
                return response;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: libc::c_int) {
        send_signal(self.child.id(), signal);
    }

    fn exit_before_banner(mut self) -> Exited {
        let status = match self.child.try_wait().expect("try_wait") {
            Some(_) => self.wait(),
            None => self.kill9(),
        };
        Exited {
            status,
            stderr: self.stderr(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `signal` to process `pid`.
#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // the pid is our own child, not yet reaped.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Reads stdout in the background, sending the port of the banner's
/// `HTTP API: http://127.0.0.1:PORT/v1` line, then draining the rest.
fn watch_banner(stdout: ChildStdout) -> (mpsc::Receiver<u16>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = banner_port(&line) {
                let _ = tx.send(port);
            }
        }
    });
    (rx, reader)
}

/// The port in `HTTP API: http://HOST:PORT/v1`.
pub fn banner_port(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("HTTP API: http://")?;
    let host_port = rest.strip_suffix("/v1")?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stream).lines();
        while let Some(Ok(line)) = lines.next() {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Response {
    try_http(port, method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path}: no answer ({e})"))
}

/// [`http`], but a failed connection is an `Err` instead of a panic: the
/// outcome of a request to a server that may have been killed.
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<Response> {
    let mut stream = try_connect(port)?;
    try_send(&mut stream, method, path, body, false)?;
    try_read_response(&mut stream)
}

/// `http` with a JSON body (`Value::Null` sends none).
pub fn http_json(port: u16, method: &str, path: &str, body: &serde_json::Value) -> Response {
    let text = (!body.is_null()).then(|| body.to_string());
    http(port, method, path, text.as_deref())
}

/// Connects to the server, with read and write timeouts.
pub fn connect(port: u16) -> TcpStream {
    try_connect(port).expect("connect")
}

fn try_connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    Ok(stream)
}

/// Writes one request; `keep_alive` leaves the connection open after it.
pub fn send(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    body: Option<&str>,
    keep_alive: bool,
) {
    try_send(stream, method, path, body, keep_alive).expect("write request");
}

fn try_send(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    body: Option<&str>,
    keep_alive: bool,
) -> std::io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: {connection}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())
}

/// Reads one response: its head, then a `content-length` or chunked body,
/// or (without either) everything up to the close.
pub fn read_response(stream: &mut TcpStream) -> Response {
    try_read_response(stream).expect("read response")
}

/// [`read_response`], with a closed or reset connection (or a cut-off
/// answer) as an `Err`.
pub fn try_read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader)?;
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = find("content-length") {
        let mut body = vec![0; len.parse().map_err(|_| invalid("content-length"))?];
        reader.read_exact(&mut body)?;
        body
    } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        while let Some(chunk) = read_chunk(&mut reader)? {
            body.extend_from_slice(&chunk);
        }
        body
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        body
    };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A response's status line and headers (names in lower case).
fn read_head(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("status line"))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok((status, headers));
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
}

/// One chunk of a chunked body; `None` after the last (empty) one.
fn read_chunk(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut size_line = String::new();
    if reader.read_line(&mut size_line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let size_text = size_line.trim().split(';').next().unwrap_or("");
    let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("chunk size"))?;
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk)?;
    chunk.truncate(size);
    Ok((size > 0).then_some(chunk))
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad {what}"))
}

/// An open Server-Sent Events stream, read from a raw connection.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    /// Text received but not yet a whole event.
    pending: String,
    ended: bool,
}

/// One event: its `event:`, `id:` and (joined) `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl ServerEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.data))
    }
}

impl EventStream {
    /// `GET PATH`; panics unless it answers 200 with `text/event-stream`.
    /// Once this returns, the server has started the stream.
    pub fn open(port: u16, path: &str) -> EventStream {
        let mut stream = connect(port);
        send(&mut stream, "GET", path, None, false);
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).expect("event stream head");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        };
        assert_eq!(status, 200, "GET {path}: {headers:?}");
        assert!(
            header("content-type").starts_with("text/event-stream"),
            "{headers:?}"
        );
        assert!(
            header("transfer-encoding").contains("chunked"),
            "{headers:?}"
        );
        EventStream {
            reader,
            pending: String::new(),
            ended: false,
        }
    }

    /// The next event (comments skipped), or `None` once the server has
    /// ended the stream. Waits at most [`HTTP_TIMEOUT`] for each read;
    /// panics then.
    pub fn next_event(&mut self) -> Option<ServerEvent> {
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            match read_chunk(&mut self.reader) {
                Ok(Some(chunk)) => self.pending.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) => self.ended = true,
                // A close without the last chunk also ends the stream.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => self.ended = true,
                Err(e) => panic!("event stream: {e}"),
            }
        }
    }

    /// The next `n` events; panics if the stream ends first.
    pub fn next_events(&mut self, n: usize) -> Vec<ServerEvent> {
        (0..n)
            .map(|i| {
                self.next_event()
                    .unwrap_or_else(|| panic!("the stream ended after {i} of {n} events"))
            })
            .collect()
    }

    /// Parses one whole event out of `pending`, skipping comment-only ones.
    fn take_event(&mut self) -> Option<ServerEvent> {
        loop {
            let end = self.pending.find("\n\n")?;
            let block: String = self.pending.drain(..end + 2).collect();
            let mut event = ServerEvent {
                event: None,
                id: None,
                data: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                match field {
                    "event" => event.event = Some(value),
                    "id" => event.id = Some(value),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(&value);
                        has_data = true;
                    }
                    _ => {} // A comment (`: keep-alive`) or an unknown field.
                }
            }
            if has_data || event.event.is_some() {
                return Some(event);
            }
        }
    }
}
